/** One hit-counter event: a user and how many hits they made at a moment. */
export interface Hit {
  userId: string
  hits: number
  timestamp: number
}

/** A small deterministic PRNG (mulberry32), so runs can be reproduced from a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface HitGeneratorOptions {
  /** Distinct users (user-0 … user-{n-1}). */
  users: number
  seed?: number
  /** Start time of the events (ms). */
  startTime?: number
  /** Time between events (ms). */
  stepMs?: number
}

/** Generates hits with 0–40 hits each, so about half pass the > 20 filter. */
export function* generateHits(count: number, options: HitGeneratorOptions): Generator<Hit> {
  const random = rng(options.seed ?? 42)
  const start = options.startTime ?? Date.now()
  const step = options.stepMs ?? 1
  for (let i = 0; i < count; i++) {
    yield {
      userId: `user-${Math.floor(random() * options.users)}`,
      hits: Math.floor(random() * 41),
      timestamp: start + i * step,
    }
  }
}

/** The counts the worker should end with: per user, the hits with more than 20. */
export function expectedCounts(hits: Iterable<Hit>): Map<string, number> {
  const counts = new Map<string, number>()
  for (const h of hits) if (h.hits > 20) counts.set(h.userId, (counts.get(h.userId) ?? 0) + 1)
  return counts
}
