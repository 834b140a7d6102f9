/**
 * Which keys of one side and partition of a stream-stream join have buffered events to expire, by
 * the time they expire at: a min-heap, so a step of stream time costs the keys it expires, not a
 * scan of the buffer. It lives in memory only: the worker builds it from the buffer table the
 * first time it processes an event of the partition, and again whenever another worker wrote the
 * partition since (see windowedJoin.ts); a stale entry (a key expired already) costs one read.
 */

interface Due<K> {
  /** Stream time past which the key's earliest buffered event has expired. */
  at: number
  key: K
  /** The key as stored (a string), to treat each key once per step. */
  storageKey: string
}

export class ExpiryIndex<K> {
  private readonly heap: Due<K>[] = []

  get size(): number {
    return this.heap.length
  }

  /** `key` has a buffered event that expires once stream time passes `at`. */
  add(at: number, key: K, storageKey: string): void {
    const heap = this.heap
    heap.push({ at, key, storageKey })
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= heap[i]!.at) break
      ;[heap[parent], heap[i]] = [heap[i]!, heap[parent]!]
      i = parent
    }
  }

  /** Takes out the keys with an event expired at `streamTime` (each once), earliest first. */
  takeDue(streamTime: number): K[] {
    const keys = new Map<string, K>()
    while (this.heap.length > 0 && this.heap[0]!.at < streamTime) {
      const due = this.pop()
      if (!keys.has(due.storageKey)) keys.set(due.storageKey, due.key)
    }
    return [...keys.values()]
  }

  private pop(): Due<K> {
    const heap = this.heap
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let least = i
        if (l < heap.length && heap[l]!.at < heap[least]!.at) least = l
        if (r < heap.length && heap[r]!.at < heap[least]!.at) least = r
        if (least === i) break
        ;[heap[least], heap[i]] = [heap[i]!, heap[least]!]
        i = least
      }
    }
    return top
  }
}
