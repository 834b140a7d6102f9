/// <reference path="./rocksdb.d.ts" />
import { mkdir } from 'node:fs/promises'
import type { BatchOperation, RocksDB } from 'rocksdb'
import { loadRocksDB } from './binding.js'
import { openError, RocksDBStoreError } from './errors.js'

/**
 * Key layout inside one partition's database. Table keys are arbitrary strings, so the applied
 * offset cannot live under any string key without risking a clash: every data key gets a one-byte
 * tag instead, and metadata sits under another tag that sorts first.
 */
const META = 0x00
const DATA = 0x01
const APPLIED_OFFSET_KEY = Buffer.from([META, ...Buffer.from('appliedOffset', 'utf8')])
const DATA_START = Buffer.from([DATA])
const DATA_END = Buffer.from([DATA + 1])

export function dataKey(key: string): Buffer {
  const k = Buffer.allocUnsafe(1 + Buffer.byteLength(key, 'utf8'))
  k[0] = DATA
  k.write(key, 1, 'utf8')
  return k
}

/** RocksDB tuning passed to every partition database. */
export interface RocksDBTuning {
  /** Memtable size per partition database, in bytes. Default 4 MiB. */
  writeBufferSize?: number
  /** RocksDB block cache per partition database, in bytes. Default 8 MiB. */
  blockCacheSize?: number
  /** Open SST files per partition database. Default 1000. */
  maxOpenFiles?: number
}

const DEFAULT_WRITE_BUFFER_SIZE = 4 * 1024 * 1024
/** Longest a close waits for RocksDB to write its memtables out (see {@link PartitionDb.close}). */
const SETTLE_TIMEOUT_MS = 10_000

/** One table partition's RocksDB database: its data and the changelog offset applied to it. */
export class PartitionDb {
  private constructor(
    readonly location: string,
    private readonly db: RocksDB,
    private readonly writeBufferSize: number,
  ) {}

  static async open(location: string, tuning: RocksDBTuning, createIfMissing = true): Promise<PartitionDb> {
    if (createIfMissing) {
      try {
        await mkdir(location, { recursive: true })
      } catch (err) {
        throw new RocksDBStoreError(
          'not-writable',
          location,
          `cannot create the RocksDB directory ${location} (${(err as Error).message}): choose a store path this process can write`,
          { cause: err },
        )
      }
    }
    const writeBufferSize = tuning.writeBufferSize ?? DEFAULT_WRITE_BUFFER_SIZE
    const db = loadRocksDB()(location)
    await new Promise<void>((resolve, reject) =>
      db.open(
        {
          createIfMissing,
          // Values are small and hot keys are cached above RocksDB; snappy is cheap and halves disk use.
          compression: true,
          writeBufferSize,
          cacheSize: tuning.blockCacheSize ?? 8 * 1024 * 1024,
          maxOpenFiles: tuning.maxOpenFiles ?? 1000,
          infoLogLevel: 'error',
        },
        (err) => (err ? reject(openError(location, err)) : resolve()),
      ),
    )
    return new PartitionDb(location, db, writeBufferSize)
  }

  async appliedOffset(): Promise<number> {
    const [v] = await this.getMany([APPLIED_OFFSET_KEY])
    return v === undefined ? -1 : Number(v.toString('utf8'))
  }

  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    return new Promise((resolve, reject) =>
      this.db.getMany(keys, { asBuffer: true }, (err, values) =>
        err ? reject(this.ioError('read', err)) : resolve(values),
      ),
    )
  }

  /**
   * Writes the data and the applied offset in one RocksDB write batch: the write-ahead log makes
   * a batch all-or-nothing, so after any crash the data on disk is exactly what the recorded
   * offset says. `sync` is off on purpose: the changelog, not this file, is the durable copy;
   * losing the last batches to a power cut only means replaying a little more of it, and
   * atomicity holds either way.
   */
  write(ops: BatchOperation[], appliedOffset: number): Promise<void> {
    if (appliedOffset >= 0)
      ops.push({ type: 'put', key: APPLIED_OFFSET_KEY, value: Buffer.from(String(appliedOffset), 'utf8') })
    if (ops.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) =>
      this.db.batch(ops, { sync: false }, (err) => (err ? reject(this.ioError('write', err)) : resolve())),
    )
  }

  /** Every data entry in key order, read from a snapshot taken when the iteration starts. */
  async *entries(): AsyncGenerator<[key: string, value: Buffer]> {
    const it = this.db.iterator({ gte: DATA_START, lt: DATA_END, keyAsBuffer: true, valueAsBuffer: true })
    try {
      while (true) {
        const entry = await new Promise<[Buffer, Buffer] | undefined>((resolve, reject) =>
          it.next((err, key, value) =>
            err
              ? reject(this.ioError('read', err))
              : resolve(key === undefined || value === undefined ? undefined : [key, value]),
          ),
        )
        if (!entry) return
        yield [entry[0].toString('utf8', 1), entry[1]]
      }
    } finally {
      await new Promise<void>((resolve) => it.end(() => resolve()))
    }
  }

  /**
   * Closes the database after letting RocksDB write its full memtables to table files. RocksDB
   * does not do that on close: what is only in memtables stays in the write-ahead log, and the
   * next open replays the log and writes the table file then, with the worker waiting on it. A
   * commit batch is never split (it carries the applied offset), so one batch can leave megabytes
   * there (apps/bench: opening a partition of a 1,000,000-key table took 110–360 ms, 12–55 ms
   * with this). The npm binding has no flush call, so this nudges RocksDB: a memtable past its
   * size is switched out by the next write (here the applied offset, rewritten unchanged), and
   * the close waits, bounded, for the background flush. Best effort: a failure here only means
   * a slower next open. After a crash (no close) the next open replays the log as before.
   */
  async close(): Promise<void> {
    try {
      await this.settleMemtables()
    } catch {
      // The data is safe in the write-ahead log either way.
    }
    await this.closeNow()
  }

  private async settleMemtables(): Promise<void> {
    const property = (name: string): number => Number(this.db.getProperty(name))
    if (property('rocksdb.cur-size-active-mem-table') >= this.writeBufferSize) {
      const [offset] = await this.getMany([APPLIED_OFFSET_KEY])
      if (offset !== undefined) await this.write([], Number(offset.toString('utf8')))
    }
    const deadline = Date.now() + SETTLE_TIMEOUT_MS
    while (property('rocksdb.num-immutable-mem-table') > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  private closeNow(): Promise<void> {
    return new Promise((resolve, reject) =>
      this.db.close((err) => (err ? reject(this.ioError('close', err)) : resolve())),
    )
  }

  private ioError(op: string, err: Error): RocksDBStoreError {
    const reason = /^Corruption\b/i.test(err.message) ? 'corrupt' : 'io'
    return new RocksDBStoreError(
      reason,
      this.location,
      `RocksDB ${op} failed at ${this.location}: ${err.message}`,
      {
        cause: err,
      },
    )
  }
}
