// The npm `rocksdb` package (abstract-leveldown 7 API) ships no types; this is the part of it
// the store uses. Callbacks only: abstract-leveldown 7 has no promise API.
declare module 'rocksdb' {
  type Callback = (err: Error | undefined | null) => void
  type ValueCallback<T> = (err: Error | undefined | null, value: T) => void

  interface OpenOptions {
    createIfMissing?: boolean
    errorIfExists?: boolean
    compression?: boolean
    /** Block cache, in bytes. */
    cacheSize?: number
    writeBufferSize?: number
    maxOpenFiles?: number
    infoLogLevel?: 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'header'
  }

  type BatchOperation = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }

  interface IteratorOptions {
    gt?: Buffer
    gte?: Buffer
    lt?: Buffer
    lte?: Buffer
    keys?: boolean
    values?: boolean
    keyAsBuffer?: boolean
    valueAsBuffer?: boolean
    highWaterMarkBytes?: number
  }

  interface RocksIterator {
    next(callback: (err: Error | undefined | null, key?: Buffer, value?: Buffer) => void): void
    end(callback: Callback): void
  }

  interface RocksDB {
    readonly status: string
    open(options: OpenOptions, callback: Callback): void
    close(callback: Callback): void
    getMany(
      keys: Buffer[],
      options: { asBuffer?: boolean; fillCache?: boolean },
      callback: ValueCallback<(Buffer | undefined)[]>,
    ): void
    batch(operations: BatchOperation[], options: { sync?: boolean }, callback: Callback): void
    iterator(options: IteratorOptions): RocksIterator
    /** A RocksDB property (`rocksdb.*`), read synchronously. */
    getProperty(property: string): string
  }

  interface RocksDBFactory {
    (location: string): RocksDB
    destroy(location: string, callback: Callback): void
    repair(location: string, callback: Callback): void
  }

  export type { BatchOperation, IteratorOptions, OpenOptions, RocksDB, RocksDBFactory, RocksIterator }
}
