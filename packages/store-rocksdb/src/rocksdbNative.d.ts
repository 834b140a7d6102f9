// `rocksdb-native` (Holepunch) ships no types; this is the part of it the store uses, as of 3.18.
// Promises throughout; the module is CommonJS (`module.exports = RocksDB`).
declare module 'rocksdb-native' {
  class RocksDB {
    constructor(path: string, options?: RocksDB.RocksDBOptions)
    static readonly constants: {
      readonly walRecoveryMode: {
        readonly TOLERATE_CORRUPTED_TAIL_RECORDS: number
        readonly ABSOLUTE_CONSISTENCY: number
        readonly POINT_IN_TIME: number
        readonly SKIP_ANY_CORRUPTED_RECORDS: number
      }
    }
    readonly opened: boolean
    readonly closed: boolean
    /** Opens the database; rejects with RocksDB's message when it cannot. */
    ready(): Promise<void>
    /** The root database: waits for every read, write and iterator, then closes. A session: ends it. */
    close(options?: { force?: boolean }): Promise<void>
    read(options?: RocksDB.BatchOptions & { fillCache?: boolean }): RocksDB.ReadBatch
    write(options?: RocksDB.BatchOptions): RocksDB.WriteBatch
    iterator(range?: RocksDB.IteratorRange, options?: RocksDB.IteratorOptions): RocksDB.RocksDBIterator
    /** A session reading from a snapshot taken now; close it to release the snapshot. */
    snapshot(): RocksDB
    /** Writes the memtables out to table files and waits for it. */
    flush(): Promise<void>
    getProperty(name: string): Promise<string>
  }

  namespace RocksDB {
    export interface RocksDBOptions {
      createIfMissing?: boolean
      /** Open SST files; -1 keeps them all open. */
      maxOpenFiles?: number
      maxBackgroundJobs?: number
      /** One of `RocksDB.constants.walRecoveryMode`. */
      walRecoveryMode?: number
      /** Memtable size of the default column family, in bytes (64 MiB unless given). */
      writeBufferSize?: number
      /** false: no block cache (else RocksDB's own 32 MiB LRU cache; its size cannot be set). Default true. */
      blockCache?: boolean
      /** Index and filter blocks in the block cache (default true; needs `blockCache`). */
      tableCacheIndexAndFilterBlocks?: boolean
    }

    export interface ReadBatch {
      /** The value, or null when the key is absent. */
      get(key: Buffer): Promise<Buffer | null>
      tryFlush(): void
    }

    export interface WriteBatch {
      tryPut(key: Buffer, value: Buffer): void
      tryDelete(key: Buffer): void
      /** Applies every operation as one RocksDB WriteBatch. */
      flush(): Promise<void>
    }

    export interface BatchOptions {
      capacity?: number
      /** Returns the batch to the database's pool once flushed. */
      autoDestroy?: boolean
    }

    export interface IteratorRange {
      gt?: Buffer
      gte?: Buffer
      lt?: Buffer
      lte?: Buffer
    }

    export interface IteratorOptions {
      reverse?: boolean
      values?: boolean
      limit?: number
      /** Entries fetched per native call. Default 8. */
      capacity?: number
    }

    /** A streamx Readable of entries. */
    export interface RocksDBIterator extends AsyncIterable<{ key: Buffer; value: Buffer }> {
      readonly destroyed: boolean
      destroy(err?: Error): void
      once(event: 'close', listener: () => void): this
    }
  }

  export = RocksDB
}
