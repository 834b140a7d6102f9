import type { AppOptions } from '../../src/index.js'
import { App } from '../../src/index.js'
import type { Hit } from '../helpers.js'
import { seededRandom } from '../helpers.js'
import { kafkaBrokers } from './kafka.js'

/** The hit counter of the design doc, with its own topic and group names per test. */
export function hitCounter(id: string, hitTopic: string, options: Partial<AppOptions> = {}) {
  const app = new App({
    id,
    broker: kafkaBrokers(),
    logger: 'error',
    web: false,
    commitIntervalMs: 500,
    kafka: { consumer: { heartbeatInterval: 300, maxWaitTimeInMs: 200 } },
    ...options,
  })
  const hits = app.topic<string, Hit>(hitTopic, { partitions: 4 })
  const countTopic = app.topic<string, Hit>(`${id}-count_topic`, { internal: true, partitions: 1 })
  const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })
  app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
      }
    },
    { name: 'countHits' },
  )
  app.agent(
    countTopic,
    async (stream) => {
      for await (const hit of stream) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
      }
    },
    { name: 'incrementCount' },
  )
  return { app, hits, countTopic, counts }
}

export const users = Array.from({ length: 50 }, (_, i) => `user-${i}`)

export function events(n: number, seed: number): Hit[] {
  const random = seededRandom(seed)
  return Array.from({ length: n }, () => ({
    userId: users[Math.floor(random() * users.length)]!,
    hits: Math.floor(random() * 40),
    timestamp: Date.now(),
  }))
}

export function expected(hits: Hit[]): Map<string, number> {
  const result = new Map<string, number>()
  for (const h of hits) if (h.hits > 20) result.set(h.userId, (result.get(h.userId) ?? 0) + 1)
  return result
}

export async function tableOf(counts: ReturnType<typeof hitCounter>['counts']): Promise<Map<string, number>> {
  const result = new Map<string, number>()
  for (const u of users) {
    const v = await counts.get(u)
    if (v > 0) result.set(u, v)
  }
  return result
}

export async function waitForTable(
  counts: ReturnType<typeof hitCounter>['counts'],
  want: Map<string, number>,
  timeoutMs: number,
): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let got: Map<string, number>
    try {
      got = await tableOf(counts)
    } catch (err) {
      // The app may be between two workers (a restart after a broker outage).
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 100))
      continue
    }
    const total = [...got.values()].reduce((a, b) => a + b, 0)
    const wantTotal = [...want.values()].reduce((a, b) => a + b, 0)
    if (total >= wantTotal || Date.now() > deadline) return got
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Sends hits through a producer-only app, fast (buffered sends, one flush at the end). */
export async function produceHits(
  id: string,
  topic: string,
  hits: Hit[],
  options: Partial<AppOptions> = {},
): Promise<void> {
  const producer = hitCounter(`${id}-producer`, topic, options)
  producer.app.agents.length = 0
  producer.app.tables.length = 0
  await producer.app.start()
  for (const h of hits) await producer.hits.send({ key: h.userId, value: h })
  await producer.app.stop()
}
