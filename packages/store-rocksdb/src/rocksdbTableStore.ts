import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { StoreWrite, TableStore, TableStoreSpec } from '@mephisto/core'
import { RocksDBStoreError } from './errors.js'
import type { LruCache } from './lruCache.js'
import { type BatchOperation, dataKey, PartitionDb, type RocksDBTuning } from './partitionDb.js'

/** Cached "this key is not stored": misses of `table.get` (which returns the default) stay cheap. */
export const ABSENT: unique symbol = Symbol('absent')
export type Cached<V> = V | typeof ABSENT

interface PendingWrite<V> {
  value: V | undefined
  /** The write call that set it: only that call's completion may drop it. */
  seq: number
}

/** The state of one partition while this process holds it. */
interface Partition<V> {
  db: PartitionDb | undefined
  opening: Promise<PartitionDb> | undefined
  /** Writes run one after another, so batches (and their offsets) reach RocksDB in call order. */
  writes: Promise<void>
  /** Set once a batch failed: later batches must not land on top of the hole it left. */
  failed: unknown
  /** Values of writes called but not yet in RocksDB, so reads see a write as soon as it is called. */
  pending: Map<string, PendingWrite<V>>
  seq: number
  /** Bumped when a write starts or ends: a read that raced one must not fill the cache. */
  gen: number
  busy: Set<Promise<unknown>>
  releasing: Promise<void> | undefined
}

/** A table's partitions, one RocksDB database each, behind one bounded cache of decoded values. */
export class RocksDBTableStore<V> implements TableStore<V> {
  private readonly parts = new Map<number, Partition<V>>()
  private closed = false

  constructor(
    /** `<path>/<appId>/<table>`: each partition lives in a numbered directory below it. */
    readonly dir: string,
    private readonly spec: TableStoreSpec<V>,
    private readonly cache: LruCache<Cached<V>>,
    private readonly tuning: RocksDBTuning,
    private readonly onClose: () => void,
  ) {}

  // getSync is deliberately absent: TableState treats a getSync answer of `undefined` as "not
  // stored", so it may only exist for stores that hold every value in memory.

  async get(partition: number, key: string): Promise<V | undefined> {
    const [v] = await this.getMany(partition, [key])
    return v
  }

  async getMany(partition: number, keys: readonly string[]): Promise<(V | undefined)[]> {
    const out = new Array<V | undefined>(keys.length)
    const missing: number[] = []
    const p = this.parts.get(partition)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!
      const pend = p?.pending.get(key)
      if (pend) {
        out[i] = pend.value
        continue
      }
      const hit = this.cache.get(cacheKey(partition, key))
      if (hit === undefined) missing.push(i)
      else out[i] = hit === ABSENT ? undefined : hit
    }
    if (missing.length === 0) return out
    const live = await this.live(partition)
    const read = this.track(live, async () => {
      const db = await this.db(partition, live)
      const gen = live.gen
      const raw = await db.getMany(missing.map((i) => dataKey(keys[i]!)))
      const fresh = live.gen === gen && !this.closed
      for (let j = 0; j < missing.length; j++) {
        const i = missing[j]!
        const b = raw[j]
        const v = b === undefined ? undefined : this.spec.decode(b)
        out[i] = v
        if (fresh) this.cache.set(cacheKey(partition, keys[i]!), v === undefined ? ABSENT : v)
      }
    })
    await read
    return out
  }

  async write(partition: number, writes: readonly StoreWrite<V>[], appliedOffset: number): Promise<void> {
    this.assertOpen()
    // Encode first: a value that fails to encode rejects the whole batch before anything changes.
    const ops: BatchOperation[] = writes.map((w) => ({
      key: dataKey(w.key),
      value: w.value === undefined ? undefined : this.spec.encode(w.value),
    }))
    // No await before the overlay is set, unless a release is under way: a read issued right
    // after this call must already see the new values, and batches must keep their call order.
    const live = this.live(partition)
    const p = live instanceof Promise ? await live : live
    const seq = ++p.seq
    p.gen++
    for (const w of writes) p.pending.set(w.key, { value: w.value, seq })
    const run = p.writes.then(async () => {
      if (p.failed !== undefined) {
        throw new RocksDBStoreError(
          'io',
          join(this.dir, String(partition)),
          `table ${this.spec.table} partition ${partition}: an earlier write failed, so later ones are refused ` +
            'to keep the applied offset honest; restart the worker to recover from the changelog',
          { cause: p.failed },
        )
      }
      const db = await this.db(partition, p)
      await db.write(ops, appliedOffset)
    })
    p.writes = run.catch((err) => {
      p.failed ??= err
    })
    let ok = false
    try {
      await this.track(p, () => run)
      ok = true
    } finally {
      p.gen++
      for (const w of writes) {
        if (p.pending.get(w.key)?.seq !== seq) continue
        p.pending.delete(w.key)
        const ck = cacheKey(partition, w.key)
        if (ok) this.cache.update(ck, w.value === undefined ? ABSENT : w.value)
        else this.cache.delete(ck)
      }
    }
  }

  async appliedOffset(partition: number): Promise<number> {
    const p = await this.live(partition)
    await p.writes
    return this.track(p, async () => (await this.db(partition, p)).appliedOffset())
  }

  async *entries(partition: number): AsyncIterable<[string, V]> {
    const p = await this.live(partition)
    await p.writes
    const db = await this.db(partition, p)
    for await (const [key, bytes] of db.entries()) yield [key, this.spec.decode(bytes)]
  }

  async release(partition: number): Promise<void> {
    const p = this.parts.get(partition)
    if (!p) return
    if (p.releasing) return p.releasing
    p.releasing = (async () => {
      await p.writes
      await Promise.allSettled([...p.busy])
      const db = p.db ?? (await p.opening?.catch(() => undefined))
      try {
        await db?.close()
      } finally {
        this.cache.deletePrefix(`${partition}:`)
        this.parts.delete(partition)
      }
    })()
    return p.releasing
  }

  async clear(partition: number): Promise<void> {
    await this.release(partition)
    await rm(join(this.dir, String(partition)), { recursive: true, force: true })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      const results = await Promise.allSettled([...this.parts.keys()].map((p) => this.release(p)))
      const failed = results.find((r) => r.status === 'rejected')
      if (failed) throw failed.reason
    } finally {
      this.cache.clear()
      this.onClose()
    }
  }

  /**
   * The partition's state, waiting out a release in progress so it is reopened afresh.
   * Synchronous when no release is under way, so writes keep their call order.
   */
  private live(partition: number): Partition<V> | Promise<Partition<V>> {
    this.assertOpen()
    const p = this.parts.get(partition)
    if (p?.releasing) return p.releasing.catch(() => {}).then(() => this.live(partition))
    if (p) return p
    const fresh: Partition<V> = {
      db: undefined,
      opening: undefined,
      writes: Promise.resolve(),
      failed: undefined,
      pending: new Map(),
      seq: 0,
      gen: 0,
      busy: new Set(),
      releasing: undefined,
    }
    this.parts.set(partition, fresh)
    return fresh
  }

  /** Opens the partition's database on first use (recovery, or a read of a released partition). */
  private db(partition: number, p: Partition<V>): Promise<PartitionDb> {
    if (p.db) return Promise.resolve(p.db)
    if (!p.opening) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= this.spec.partitions) {
        return Promise.reject(
          new RangeError(
            `table ${this.spec.table} has partitions 0..${this.spec.partitions - 1}, not ${partition}`,
          ),
        )
      }
      p.opening = PartitionDb.open(join(this.dir, String(partition)), this.tuning).then(
        (db) => {
          p.db = db
          return db
        },
        (err) => {
          p.opening = undefined
          throw err
        },
      )
    }
    return p.opening
  }

  private track<T>(p: Partition<V>, fn: () => Promise<T>): Promise<T> {
    const op = fn()
    p.busy.add(op)
    const done = (): void => {
      p.busy.delete(op)
    }
    op.then(done, done)
    return op
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new RocksDBStoreError(
        'closed',
        this.dir,
        `the RocksDB store of table ${this.spec.table} is closed`,
      )
    }
  }
}

function cacheKey(partition: number, key: string): string {
  return `${partition}:${key}`
}
