import { deepFreeze } from './deepFreeze.js'
import type { Store, StoreWrite, TableStore, TableStoreSpec } from './store.js'

export interface MemoryStoreOptions {
  /**
   * Hand out deeply frozen values, so code that changes a value a table read returned (instead
   * of `set()`ting a new one) throws in strict-mode code. Default `false`; the testkit turns it
   * on. See `TableStore.frozenValues`.
   */
  freezeValues?: boolean
}

/**
 * Tables in process memory: fast, and rebuilt from the changelog on every start.
 * The default store (`store: 'memory://'`).
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store {
  const freeze = options.freezeValues === true
  return {
    kind: 'memory',
    async open<V>(_spec: TableStoreSpec<V>): Promise<TableStore<V>> {
      return new MemoryTableStore<V>(freeze)
    },
  }
}

class MemoryTableStore<V> implements TableStore<V> {
  private readonly parts = new Map<number, Map<string, V>>()
  private readonly applied = new Map<number, number>()

  constructor(readonly frozenValues: boolean) {}

  private part(partition: number): Map<string, V> {
    let p = this.parts.get(partition)
    if (!p) this.parts.set(partition, (p = new Map()))
    return p
  }

  readonly getSync = (partition: number, key: string): V | undefined => this.parts.get(partition)?.get(key)

  async get(partition: number, key: string): Promise<V | undefined> {
    return this.getSync(partition, key)
  }

  async getMany(partition: number, keys: readonly string[]): Promise<(V | undefined)[]> {
    return keys.map((k) => this.getSync(partition, k))
  }

  async write(partition: number, writes: readonly StoreWrite<V>[], appliedOffset: number): Promise<void> {
    const p = this.part(partition)
    for (const w of writes) {
      if (w.value === undefined) p.delete(w.key)
      else p.set(w.key, this.frozenValues ? deepFreeze(w.value) : w.value)
    }
    if (appliedOffset >= 0) this.applied.set(partition, appliedOffset)
  }

  async appliedOffset(partition: number): Promise<number> {
    return this.applied.get(partition) ?? -1
  }

  async *entries(partition: number): AsyncIterable<[string, V]> {
    yield* [...(this.parts.get(partition) ?? [])]
  }

  async release(_partition: number): Promise<void> {
    // Kept, with its applied offset: if the partition comes back (an eager Kafka rebalance
    // revokes and reassigns everything), recovery replays only the changelog written since.
  }

  async clear(partition: number): Promise<void> {
    this.parts.delete(partition)
    this.applied.delete(partition)
  }

  async close(): Promise<void> {
    this.parts.clear()
    this.applied.clear()
  }
}
