import { App, bytes } from '@mephisto/core'
import type { Hit } from './hits.js'
import { generateHits, rng } from './hits.js'

export interface ProduceOptions {
  broker: string | string[]
  topic?: string
  count: number
  users: number
  /** Events per second; 0 = as fast as possible. */
  rate?: number
  /** Share (0–1) of deliberately malformed messages, to show the dead-letter path. */
  malformed?: number
  seed?: number
  /** Called every `progressEvery` events and at the end. */
  onProgress?: (sent: number, total: number) => void
  progressEvery?: number
  signal?: AbortSignal
}

export interface ProduceResult {
  sent: number
  malformed: number
  /** The well-formed hits, for checking the worker's counts. */
  hits: Hit[]
  ms: number
}

/**
 * Sends `count` hit events keyed by user id to `hit_count`. Malformed ones (broken JSON or a
 * wrong shape) go to the same topic, as a buggy foreign producer would send them.
 */
export async function produceHits(options: ProduceOptions): Promise<ProduceResult> {
  // No web server: the producer has nothing to serve, and a worker on this machine owns port 6066.
  const app = new App({ id: 'hit-counter-producer', broker: options.broker, logger: 'warn', web: false })
  const name = options.topic ?? 'hit_count'
  // Bytes, encoded here: the same topic carries well-formed and deliberately broken values.
  const topic = app.topic<string, Buffer>(name, { value: bytes() })
  await app.start()
  const started = Date.now()
  const hits: Hit[] = []
  const random = rng((options.seed ?? 42) + 1)
  const every = options.progressEvery ?? 1000
  let sent = 0
  let malformed = 0
  try {
    for (const hit of generateHits(options.count, { users: options.users, seed: options.seed ?? 42 })) {
      if (options.signal?.aborted) break
      if (options.malformed && random() < options.malformed) {
        // Half broken JSON, half valid JSON of the wrong shape: both must reach the DLQ.
        const bad =
          random() < 0.5 ? `{"userId": "${hit.userId}", "hits": ` : JSON.stringify({ user: hit.userId })
        await topic.send({ key: hit.userId, value: Buffer.from(bad) })
        malformed++
      } else {
        await topic.send({ key: hit.userId, value: Buffer.from(JSON.stringify(hit)) })
        hits.push(hit)
      }
      sent++
      if (sent % every === 0) options.onProgress?.(sent, options.count)
      if (options.rate) {
        const due = started + (sent * 1000) / options.rate
        const wait = due - Date.now()
        if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      }
    }
  } finally {
    await app.stop()
  }
  options.onProgress?.(sent, options.count)
  return { sent, malformed, hits, ms: Date.now() - started }
}
