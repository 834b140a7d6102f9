// PrometheusMonitor on a real broker, read as Prometheus reads it: GET /metrics on the worker's web
// server, parsed from the exposition text. An agent held at a gate lets a known lag build up on a
// 2-partition topic; the per-partition end offset, committed offset and lag must be exactly what
// the broker and the group say. Then the gate opens: lag drains to 0 and the counters move.
import { PrometheusMonitor } from '@mephisto/monitor-prometheus'
import { expect, it } from 'vitest'
import { App } from '../../src/index.js'
import { describeKafka, kafkaBrokers, testTransport, topicsDeletedAfterAll, uniqueName } from './kafka.js'

const created = topicsDeletedAfterAll()

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The Prometheus text format: `# TYPE` lines and samples (`name{l="v",...} value`). */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) types.set(type[1]!, type[2]!)
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return { types, samples }
}

interface Scrape {
  types: Map<string, string>
  /** The one sample with this name and these labels, or undefined. */
  get(name: string, labels?: Record<string, string>): number | undefined
  /** Per partition of `topic`: the samples of `name`. */
  byPartition(name: string, topic: string): Record<number, number>
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
  const { types, samples } = parseExposition(await res.text())
  const matching = (name: string, labels: Record<string, string>): Sample[] =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return {
    types,
    get(name, labels = {}) {
      const found = matching(name, labels)
      if (found.length > 1)
        throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`)
      return found[0]?.value
    },
    byPartition(name, topic) {
      return Object.fromEntries(matching(name, { topic }).map((s) => [Number(s.labels.partition), s.value]))
    },
  }
}

async function until<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Sends `counts[p]` records to partition p of `topic`, and waits for the broker's acks. */
async function produce(topic: string, counts: readonly number[]): Promise<void> {
  const t = testTransport()
  await t.connect()
  const producer = t.producer()
  try {
    for (const [partition, n] of counts.entries()) {
      for (let i = 0; i < n; i++) {
        await producer.send({ topic, partition, key: Buffer.from(`k${i}`), value: Buffer.from(String(i)) })
      }
    }
    await producer.flush()
  } finally {
    await producer.close()
    await t.close()
  }
}

const first = [7, 4]
const second = [30, 50]

describeKafka('PrometheusMonitor /metrics on Kafka', () => {
  it('reports end offset, committed offset and lag per partition exactly, and counters that move', async () => {
    const id = uniqueName('metrics')
    created.push(id)
    const topicName = `${id}-orders`
    const prometheus = new PrometheusMonitor()
    const app = new App({
      id,
      broker: kafkaBrokers(),
      logger: 'error',
      web: { port: 0 },
      commitIntervalMs: 200,
      kafka: { consumer: { heartbeatInterval: 300, sessionTimeout: 10_000, maxWaitTimeInMs: 100 } },
    })
    app.sensors.add(prometheus)
    const orders = app.topic<string, number>(topicName, { partitions: 2 })
    // Closed, the gate holds the agent on the event in its hands; nothing after it is acked.
    let gate: Promise<void> | undefined
    let open = (): void => {}
    let processed = 0
    app.agent(
      orders,
      async (stream) => {
        for await (const _ of stream) {
          if (gate) await gate
          processed++
        }
      },
      { name: 'orders' },
    )
    const broker = testTransport()
    await broker.connect()
    await app.start()
    try {
      const url = app.webUrl!
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const lagOf = (s: Scrape) => ({
        end: s.byPartition('mephisto_partition_end_offset', topicName),
        committed: s.byPartition('mephisto_partition_committed_offset', topicName),
        lag: s.byPartition('mephisto_consumer_lag', topicName),
      })

      // Phase 1, gate open: everything is processed and committed.
      await produce(topicName, first)
      const caughtUp = await until(
        'the first records committed',
        async () => lagOf(await scrape(url)),
        (m) => JSON.stringify(m.committed) === JSON.stringify({ 0: first[0], 1: first[1] }),
      )
      expect(caughtUp).toEqual({
        end: { 0: first[0], 1: first[1] },
        committed: { 0: first[0], 1: first[1] },
        lag: { 0: 0, 1: 0 },
      })
      const before = await scrape(url)

      // Phase 2, gate closed: the first record to arrive is held, the rest wait behind it.
      gate = new Promise<void>((resolve) => (open = resolve))
      await produce(topicName, second)
      const brokerEnds = await broker.admin.endOffsets(topicName)
      expect(Object.fromEntries(brokerEnds)).toEqual({ 0: first[0]! + second[0]!, 1: first[1]! + second[1]! })
      const ends = { 0: brokerEnds.get(0)!, 1: brokerEnds.get(1)! }
      const held = await until(
        'every record received while the agent is held',
        () => scrape(url),
        (s) => s.get('mephisto_messages_received_total', { topic: topicName }) === ends[0] + ends[1],
      )
      // Nothing is committed past the held record (let a few commit intervals go by to be sure).
      await new Promise((r) => setTimeout(r, 700))
      const blocked = await scrape(url)
      const groupCommitted = await broker.admin.groupOffsets(id, topicName)
      expect(Object.fromEntries(groupCommitted)).toEqual({ 0: first[0], 1: first[1] })
      expect(lagOf(blocked)).toEqual({
        end: ends,
        committed: { 0: groupCommitted.get(0), 1: groupCommitted.get(1) },
        lag: { 0: ends[0] - groupCommitted.get(0)!, 1: ends[1] - groupCommitted.get(1)! },
      })
      expect(lagOf(blocked).lag).toEqual({ 0: second[0], 1: second[1] })
      expect(blocked.byPartition('mephisto_partition_read_offset', topicName)).toEqual({
        0: ends[0] - 1,
        1: ends[1] - 1,
      })
      // One event is in the agent's hands; the agent has seen the first ones and that one.
      expect(blocked.get('mephisto_events_active', { stream: 'orders' })).toBe(1)
      expect(blocked.get('mephisto_events_total', { stream: 'orders' })).toBe(first[0]! + first[1]! + 1)
      expect(held.get('mephisto_commits_total')).toBeGreaterThan(0)
      expect(processed).toBe(first[0]! + first[1]!)

      // Phase 3, gate open: the agent drains, commits catch up, lag goes to 0.
      gate = undefined
      open()
      const drained = await until(
        'the lag drained',
        async () => lagOf(await scrape(url)),
        (m) => JSON.stringify(m.lag) === JSON.stringify({ 0: 0, 1: 0 }),
      )
      expect(drained).toEqual({ end: ends, committed: ends, lag: { 0: 0, 1: 0 } })
      expect(Object.fromEntries(await broker.admin.groupOffsets(id, topicName))).toEqual(ends)
      const after = await scrape(url)
      const total = ends[0] + ends[1]
      expect(after.get('mephisto_messages_received_total', { topic: topicName })).toBe(total)
      expect(after.get('mephisto_events_total', { stream: 'orders' })).toBe(total)
      expect(after.get('mephisto_events_active', { stream: 'orders' })).toBe(0)
      expect(after.get('mephisto_commits_total')!).toBeGreaterThan(blocked.get('mephisto_commits_total')!)
      expect(after.get('mephisto_event_runtime_seconds_count', { stream: 'orders' })).toBe(total)
      expect(after.get('mephisto_messages_received_total', { topic: topicName })!).toBeGreaterThan(
        before.get('mephisto_messages_received_total', { topic: topicName })!,
      )
      expect(processed).toBe(total)
      for (const name of [
        'mephisto_partition_end_offset',
        'mephisto_partition_committed_offset',
        'mephisto_consumer_lag',
      ])
        expect(after.types.get(name)).toBe('gauge')
      expect(after.types.get('mephisto_messages_received_total')).toBe('counter')
      process.stderr.write(
        `[metrics] held: end ${JSON.stringify(ends)}, committed ${JSON.stringify(lagOf(blocked).committed)}, ` +
          `lag ${JSON.stringify(lagOf(blocked).lag)}; released: lag ${JSON.stringify(drained.lag)}, ` +
          `commits ${blocked.get('mephisto_commits_total')} -> ${after.get('mephisto_commits_total')}, ` +
          `events ${blocked.get('mephisto_events_total', { stream: 'orders' })} -> ${after.get('mephisto_events_total', { stream: 'orders' })}\n`,
      )
    } finally {
      open()
      await app.stop()
      await broker.close()
    }
  }, 60_000)
})
