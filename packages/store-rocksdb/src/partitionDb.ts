/// <reference path="./rocksdbNative.d.ts" />
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import RocksDB from 'rocksdb-native'
import {
  isCorruption,
  isUnsupportedCompression,
  openError,
  RocksDBStoreError,
  unreadableError,
} from './errors.js'

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

/** One operation of a write batch: a put, or a delete when `value` is undefined. */
export interface BatchOperation {
  key: Buffer
  value: Buffer | undefined
}

/** RocksDB tuning passed to every partition database. */
export interface RocksDBTuning {
  /** Memtable size per partition database, in bytes. Default 4 MiB. */
  writeBufferSize?: number
  /**
   * RocksDB block cache per partition database. Default none: blocks are read through the OS page
   * cache (they are stored uncompressed) and hot values sit in the store's own cache above
   * RocksDB. Any value > 0 turns on RocksDB's own cache, whose size rocksdb-native fixes at
   * 32 MiB per partition database, whatever the number given.
   */
  blockCacheSize?: number
  /** Open SST files per partition database. Default 1000. */
  maxOpenFiles?: number
}

const DEFAULT_WRITE_BUFFER_SIZE = 4 * 1024 * 1024
/** Entries a scan fetches per native call (rocksdb-native's default of 8 costs a thread hop per 8). */
const SCAN_CHUNK = 512

/** One table partition's RocksDB database: its data and the changelog offset applied to it. */
export class PartitionDb {
  /** Scans under way: a close ends them, as it must not wait for a caller that stopped iterating. */
  private readonly scans = new Set<RocksDB.RocksDBIterator>()

  private constructor(
    readonly location: string,
    private readonly db: RocksDB,
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
    const compression = await compressionOf(location)
    if (compression !== undefined && compression !== 'kNoCompression') {
      throw unreadableError(
        location,
        new Error(`table files compressed with ${compression}`),
        `${compression} not supported`,
      )
    }
    // Measured with bench/bigTable.ts (2,000,000 keys, 4 partitions): RocksDB's 32 MiB caches
    // raised peak RSS by about 45 MB (448-452 MB against 404-407 MB) for no faster reads.
    const blockCache = (tuning.blockCacheSize ?? 0) > 0
    const db = new RocksDB(location, {
      createIfMissing,
      writeBufferSize: tuning.writeBufferSize ?? DEFAULT_WRITE_BUFFER_SIZE,
      blockCache,
      // Index and filter blocks go in the block cache when there is one, else they stay with each
      // open table file (RocksDB refuses the first without a cache).
      tableCacheIndexAndFilterBlocks: blockCache,
      maxOpenFiles: tuning.maxOpenFiles ?? 1000,
      // RocksDB's own default; rocksdb-native asks for 6, too many for one small database per partition.
      maxBackgroundJobs: 2,
      // After a crash, recover every batch up to the first damaged log record and nothing after it:
      // a batch is one log record, so it comes back whole or not at all (see write()).
      walRecoveryMode: RocksDB.constants.walRecoveryMode.POINT_IN_TIME,
    })
    try {
      await db.ready()
    } catch (err) {
      throw openError(location, err as Error)
    }
    return new PartitionDb(location, db)
  }

  async appliedOffset(): Promise<number> {
    const [v] = await this.getMany([APPLIED_OFFSET_KEY])
    return v === undefined ? -1 : Number(v.toString('utf8'))
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    // One read batch is one MultiGet on one libuv thread.
    const batch = this.db.read({ capacity: keys.length, autoDestroy: true })
    const values = keys.map((k) => batch.get(k))
    batch.tryFlush()
    try {
      return (await Promise.all(values)).map((v) => v ?? undefined)
    } catch (err) {
      throw this.ioError('read', err as Error)
    }
  }

  /**
   * Writes the data and the applied offset in one RocksDB write batch: the write-ahead log makes
   * a batch all-or-nothing, so after any crash the data on disk is exactly what the recorded
   * offset says. `sync` is off (rocksdb-native always writes so): the changelog, not this file,
   * is the durable copy; losing the last batches to a power cut only means replaying a little
   * more of it, and atomicity holds either way.
   */
  async write(ops: BatchOperation[], appliedOffset: number): Promise<void> {
    if (appliedOffset >= 0)
      ops.push({ key: APPLIED_OFFSET_KEY, value: Buffer.from(String(appliedOffset), 'utf8') })
    if (ops.length === 0) return
    const batch = this.db.write({ capacity: ops.length, autoDestroy: true })
    for (const op of ops) {
      if (op.value === undefined) batch.tryDelete(op.key)
      else batch.tryPut(op.key, op.value)
    }
    try {
      await batch.flush()
    } catch (err) {
      throw this.ioError('write', err as Error)
    }
  }

  /**
   * Every data entry in key order, read from a snapshot taken when the iteration starts: writes
   * that land meanwhile (a commit during a scan of the table) are not seen, half or whole.
   */
  async *entries(): AsyncGenerator<[key: string, value: Buffer]> {
    const snapshot = this.db.snapshot()
    const scan = snapshot.iterator({ gte: DATA_START, lt: DATA_END }, { capacity: SCAN_CHUNK })
    this.scans.add(scan)
    try {
      for await (const { key, value } of scan) yield [key.toString('utf8', 1), value]
    } catch (err) {
      throw this.ioError('read', err as Error)
    } finally {
      this.scans.delete(scan)
      await snapshot.close()
    }
  }

  /**
   * Closes the database after writing its memtables out to table files. RocksDB does not do that
   * on close: what is only in memtables stays in the write-ahead log, and the next open replays
   * the log and writes the table files then, with the worker waiting on it to recover. A commit
   * batch is never split (it carries the applied offset), so one batch can leave megabytes there.
   * Best effort: a failed flush only means a slower next open. After a crash (no close) the next
   * open replays the log as usual. Scans still open are ended first, as the old binding did:
   * rocksdb-native's close would otherwise wait for them forever.
   */
  async close(): Promise<void> {
    await Promise.all([...this.scans].map(endScan))
    try {
      await this.db.flush()
    } catch {
      // The data is safe in the write-ahead log either way.
    }
    try {
      await this.db.close()
    } catch (err) {
      throw this.ioError('close', err as Error)
    }
  }

  private ioError(op: string, err: Error): RocksDBStoreError {
    const message = causeMessage(err)
    if (isUnsupportedCompression(message)) return unreadableError(this.location, err, message)
    return new RocksDBStoreError(
      isCorruption(message) ? 'corrupt' : 'io',
      this.location,
      `RocksDB ${op} failed at ${this.location}: ${message}`,
      { cause: err },
    )
  }
}

/**
 * The compression of the database's table files as its newest OPTIONS file names it, or undefined
 * for a new database. The RocksDB of rocksdb-native is built without any: a database written by
 * 0.1.x (npm `rocksdb`, snappy) opens, then fails on the first compressed block it reads, so it is
 * refused here, before RocksDB opens (and rewrites) it.
 */
async function compressionOf(location: string): Promise<string | undefined> {
  let names: string[]
  try {
    names = await readdir(location)
  } catch {
    return undefined
  }
  const newest = names
    .filter((n) => /^OPTIONS-\d+$/.test(n))
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))
    .at(-1)
  if (newest === undefined) return undefined
  const options = await readFile(join(location, newest), 'utf8')
  return /^\s*compression=(\w+)/m.exec(options)?.[1]
}

function endScan(scan: RocksDB.RocksDBIterator): Promise<void> {
  return new Promise((resolve) => {
    if (scan.destroyed) return resolve()
    scan.once('close', () => resolve())
    scan.destroy()
  })
}

/** rocksdb-native reports a failed batch as "Batch was not applied" with RocksDB's message as its cause. */
function causeMessage(err: Error): string {
  const cause = err.cause
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message
}
