/**
 * A bounded least-recently-used map. A `Map` keeps insertion order, so re-inserting a key on
 * every hit makes its first key the least recently used one: O(1) for get, set and eviction.
 */
export class LruCache<V> {
  private readonly map = new Map<string, V>()

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.map.size
  }

  has(key: string): boolean {
    return this.map.has(key)
  }

  /** The value, marked as just used; `undefined` when absent. */
  get(key: string): V | undefined {
    const v = this.map.get(key)
    if (v === undefined) return undefined
    this.map.delete(key)
    this.map.set(key, v)
    return v
  }

  set(key: string, value: V): void {
    if (this.capacity <= 0) return
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next()
      if (!oldest.done) this.map.delete(oldest.value)
    }
  }

  /** Replaces the value only if the key is cached: writes keep hot keys fresh without evicting them. */
  update(key: string, value: V): void {
    if (this.map.has(key)) this.map.set(key, value)
  }

  delete(key: string): void {
    this.map.delete(key)
  }

  /** Drops every key that starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const k of this.map.keys()) if (k.startsWith(prefix)) this.map.delete(k)
  }

  clear(): void {
    this.map.clear()
  }
}
