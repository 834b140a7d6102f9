import { defaultPartition, MemoryBroker, MemoryTransport } from '@mephisto/core'
import type { Hit } from '@mephisto/hit-counter-producer'
import { expectedCounts, generateHits } from '@mephisto/hit-counter-producer'
import { createHitCounter } from '@mephisto/hit-counter-worker'

export interface MemoryBenchResult {
  events: number
  mephistoMs: number
  plainMs: number
  mephistoPerSec: number
  plainPerSec: number
  ratio: number
  countsMatch: boolean
}

const PARTITIONS = 8

function fill(broker: MemoryBroker, hits: Hit[]): void {
  broker.createTopic({ name: 'hit_count', partitions: PARTITIONS })
  for (const h of hits) {
    const key = Buffer.from(h.userId)
    broker.append('hit_count', defaultPartition(key, PARTITIONS), {
      key,
      value: Buffer.from(JSON.stringify(h)),
    })
  }
}

/**
 * The hit counter on the memory broker against a plain async loop doing the same work (decode
 * JSON, filter hits > 20, re-encode to an output list, count per user and per user and minute
 * of event time in Maps, as the hit counter's table and tumbling window do) over the same
 * pre-filled records. Both read bytes from the same kind of log; only the runtime differs.
 */
export async function memoryBench(events: number, users = 1000): Promise<MemoryBenchResult> {
  const hits = [...generateHits(events, { users, seed: 7, startTime: 0 })]
  const expected = expectedCounts(hits)
  const want = [...expected.values()].reduce((a, b) => a + b, 0)

  // Plain loop: the same bytes, the same decode/filter/encode/count, no framework.
  const plainBroker = new MemoryBroker({ name: 'bench-plain' })
  fill(plainBroker, hits)
  const t0 = performance.now()
  const out: Buffer[] = []
  const map = new Map<string, number>()
  const perMinute = new Map<string, number>()
  for (let p = 0; p < PARTITIONS; p++) {
    for (const r of plainBroker.records('hit_count', p)) {
      await null // an async loop, as an agent body is
      const hit = JSON.parse(r.value!.toString('utf8')) as Hit
      if (hit.hits > 20) out.push(Buffer.from(JSON.stringify(hit)))
    }
  }
  for (const b of out) {
    await null
    const hit = JSON.parse(b.toString('utf8')) as Hit
    map.set(hit.userId, (map.get(hit.userId) ?? 0) + 1)
    const window = `${hit.userId}@${Math.floor(hit.timestamp / 60_000)}`
    perMinute.set(window, (perMinute.get(window) ?? 0) + 1)
  }
  const plainMs = performance.now() - t0

  // Mephisto: the hit counter app as users write it, started on a pre-filled broker.
  const broker = new MemoryBroker({ name: 'bench-mephisto' })
  fill(broker, hits)
  const { app, counts } = createHitCounter({
    broker: 'memory://',
    id: 'bench-hit-counter',
    app: { logger: 'warn' },
  })
  const t1 = performance.now()
  await app.start({ transport: new MemoryTransport(broker) })
  let total = 0
  for (;;) {
    total = 0
    for await (const [, v] of counts.entries()) total += v
    if (total >= want) break
    // Poll gently: summing the table takes CPU from the run being measured.
    await new Promise((r) => setTimeout(r, 5))
  }
  const mephistoMs = performance.now() - t1
  let countsMatch = true
  for (const [u, c] of expected) if ((await counts.get(u)) !== c) countsMatch = false
  await app.stop()
  return {
    events,
    mephistoMs,
    plainMs,
    mephistoPerSec: (events * 1000) / mephistoMs,
    plainPerSec: (events * 1000) / plainMs,
    ratio: plainMs / mephistoMs,
    countsMatch: countsMatch && map.size === expected.size,
  }
}
