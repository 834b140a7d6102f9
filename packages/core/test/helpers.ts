import type { AppOptions } from '../src/index.js'
import { App } from '../src/index.js'

export interface Hit {
  userId: string
  hits: number
  timestamp: number
}

/** An app that logs nothing below errors, so test output shows only what matters. */
export function quietApp(id: string, options: Omit<AppOptions, 'id'> = {}): App {
  return new App({ id, logger: 'silent', ...options })
}

/** The hit counter of the design doc (filter -> count_topic -> table per userId). */
export function hitCounter(options: Omit<AppOptions, 'id'> = {}) {
  const app = quietApp('hit-counter', options)
  const hits = app.topic<string, Hit>('hit_count', { partitions: 4 })
  const countTopic = app.topic<string, Hit>('count_topic', { internal: true, partitions: 1 })
  const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })
  const countHits = app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
      }
    },
    { name: 'countHits' },
  )
  const incrementCount = app.agent(
    countTopic,
    async (stream) => {
      for await (const hit of stream) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
      }
    },
    { name: 'incrementCount' },
  )
  return { app, hits, countTopic, counts, countHits, incrementCount }
}

/** mulberry32: a small seeded RNG, so a failing random test can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A promise with its resolve handle, to hold an agent at a chosen point. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void
  const promise = new Promise<T>((resolve) => {
    open = resolve
  })
  return { promise, open }
}
