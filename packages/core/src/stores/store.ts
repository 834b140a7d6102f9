/**
 * Where a table keeps its partitions. A `Store` opens one `TableStore` per table; the table
 * talks to it in storage keys (strings) and decoded values. Writes come in batches together
 * with the changelog offset they bring the partition up to, so a persistent store can apply
 * both atomically and a restart replays only the changelog after it.
 */
export interface Store {
  /** `memory`, `rocksdb`, ... (for banners and errors). */
  readonly kind: string
  open<V>(spec: TableStoreSpec<V>): Promise<TableStore<V>>
  /** Removes all local state of the app (what `mephisto reset` calls). */
  reset?(appId: string): Promise<void>
}

export interface TableStoreSpec<V> {
  appId: string
  table: string
  partitions: number
  /** Encodes values for persistent stores; the memory store keeps values as they are. */
  encode(value: V): Buffer
  decode(bytes: Buffer): V
}

export interface StoreWrite<V> {
  key: string
  /** `undefined` deletes the key. */
  value: V | undefined
}

export interface TableStore<V> {
  get(partition: number, key: string): Promise<V | undefined>
  /** Synchronous read for stores that hold everything in memory; absent otherwise. */
  readonly getSync?: (partition: number, key: string) => V | undefined
  /**
   * The store hands out deeply frozen values (`memoryStore({ freezeValues: true })`, what the
   * testkit uses). The table then freezes what `set()` is given and what `default()` returns as
   * well, so every value a read returns is frozen and an in-place change throws instead of being
   * lost at the next restart.
   */
  readonly frozenValues?: boolean
  getMany(partition: number, keys: readonly string[]): Promise<(V | undefined)[]>
  /** Applies the writes and records `appliedOffset` (the changelog offset they reach) atomically. */
  write(partition: number, writes: readonly StoreWrite<V>[], appliedOffset: number): Promise<void>
  /** The changelog offset applied last to a partition, -1 when none. */
  appliedOffset(partition: number): Promise<number>
  entries(partition: number): AsyncIterable<[string, V]>
  /** The worker no longer owns the partition: release its memory (a persistent store keeps it on disk). */
  release(partition: number): Promise<void>
  /** Deletes the partition's data and applied offset. */
  clear(partition: number): Promise<void>
  close(): Promise<void>
}
