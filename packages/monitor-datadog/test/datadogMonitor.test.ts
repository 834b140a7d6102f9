import { createSocket } from 'node:dgram'
import type { AddressInfo } from 'node:net'
import { App } from '@mephisto/core'
import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { DogStatsdClient } from '../src/index.js'
import { DatadogMonitor } from '../src/index.js'
import type { StatsdLine } from './helpers.js'
import { documentedMetrics, exerciseEveryHook, parseStatsd } from './helpers.js'

interface Hit {
  userId: string
  hits: number
}

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function hitCounter() {
  const app = new App({ id: 'dd-hits', logger: 'warn' })
  const hits = app.topic<string, Hit>('hits', { partitions: 2 })
  const countTopic = app.topic<string, Hit>('count_topic', { internal: true, partitions: 1 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 1 })
  app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream)
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
    },
    { name: 'countHits' },
  )
  app.agent(
    countTopic,
    async (stream) => {
      for await (const hit of stream) counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
    },
    { name: 'incrementCount' },
  )
  return { app, hits }
}

/** A client that keeps what it is asked to send, formatted as DogStatsD lines. */
function capturingClient(): DogStatsdClient & { lines: StatsdLine[] } {
  const lines: StatsdLine[] = []
  const push = (name: string, value: number, type: string, tags: string[] = [], rate = 1): void => {
    lines.push(
      ...parseStatsd(
        `${name}:${value}|${type}${rate !== 1 ? `|@${rate}` : ''}${tags.length ? `|#${tags.join(',')}` : ''}`,
      ),
    )
  }
  return {
    lines,
    increment: (name, value, tags) => push(name, value, 'c', tags),
    gauge: (name, value, tags) => push(name, value, 'g', tags),
    timing: (name, value, rate, tags) => push(name, value, 'ms', tags, rate),
    close: (cb) => cb?.(),
  }
}

const sum = (lines: StatsdLine[], name: string, tags: Record<string, string> = {}): number =>
  lines
    .filter((l) => l.name === name && Object.entries(tags).every(([k, v]) => l.tags[k] === v))
    .reduce((n, l) => n + l.value, 0)

const TYPES: Record<string, string> = { count: 'c', gauge: 'g', timing: 'ms' }

describe('DatadogMonitor', () => {
  it('sends DogStatsD over UDP with names, types and topic/partition/stream/table tags', async () => {
    const socket = createSocket('udp4')
    const lines: StatsdLine[] = []
    socket.on('message', (msg) => lines.push(...parseStatsd(msg.toString('utf8'))))
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r))
    cleanups.push(() => new Promise<void>((r) => socket.close(() => r())))
    const port = (socket.address() as AddressInfo).port

    const h = hitCounter()
    const datadog = new DatadogMonitor({ host: '127.0.0.1', port, tags: { env: 'test' }, flushIntervalMs: 0 })
    h.app.sensors.add(datadog)
    const t = await TestApp.start(h.app)
    cleanups.push(() => t.stop())
    for (let i = 0; i < 12; i++) {
      await t.send(h.hits, {
        key: `u${i % 3}`,
        partition: i % 2,
        value: { userId: `u${i % 3}`, hits: i < 8 ? 30 : 5 },
      })
    }
    await t.sendRaw('hits', { key: 'u0', value: '{broken', partition: 1 })
    await t.settle()
    await t.commit()
    await datadog.close() // flushes counts and gauges, then the client's buffer

    const deadline = Date.now() + 5000
    while (!lines.some((l) => l.name === 'mephisto.consumer_lag') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(lines.length).toBeGreaterThan(20)
    for (const line of lines) {
      expect(line.name).toMatch(/^mephisto\.[a-z_]+$/)
      expect(['c', 'g', 'ms']).toContain(line.type)
      expect(line.tags.env).toBe('test')
    }
    const typeOf = (name: string): string[] => [
      ...new Set(lines.filter((l) => l.name === name).map((l) => l.type)),
    ]

    expect(sum(lines, 'mephisto.messages_received', { topic: 'hits' })).toBe(13)
    expect(typeOf('mephisto.messages_received')).toEqual(['c'])
    expect(sum(lines, 'mephisto.events', { stream: 'countHits' })).toBe(12)
    expect(sum(lines, 'mephisto.events', { stream: 'incrementCount' })).toBe(8)
    const runtimes = lines.filter((l) => l.name === 'mephisto.event_runtime' && l.tags.stream === 'countHits')
    expect(runtimes).toHaveLength(12)
    expect(typeOf('mephisto.event_runtime')).toEqual(['ms'])
    expect(sum(lines, 'mephisto.table_sets', { table: 'counts' })).toBe(8)
    expect(sum(lines, 'mephisto.messages_sent', { topic: 'count_topic' })).toBe(8)
    expect(
      lines.filter((l) => l.name === 'mephisto.send_latency' && l.tags.topic === 'count_topic').length,
    ).toBeGreaterThan(0)
    expect(sum(lines, 'mephisto.dlq_messages', { topic: 'hits', dlq_topic: 'dd-hits-hits-dlq' })).toBe(1)
    expect(typeOf('mephisto.commit_latency')).toEqual(['ms'])

    const gauge = (name: string, tags: Record<string, string>): number | undefined =>
      lines.filter((l) => l.name === name && Object.entries(tags).every(([k, v]) => l.tags[k] === v)).at(-1)
        ?.value
    // Partition 0 holds 6 hits, partition 1 six hits and the broken record; all committed.
    expect(gauge('mephisto.partition_end_offset', { topic: 'hits', partition: '0' })).toBe(6)
    expect(gauge('mephisto.partition_end_offset', { topic: 'hits', partition: '1' })).toBe(7)
    expect(gauge('mephisto.partition_committed_offset', { topic: 'hits', partition: '1' })).toBe(7)
    expect(gauge('mephisto.partition_read_offset', { topic: 'hits', partition: '1' })).toBe(6)
    expect(gauge('mephisto.consumer_lag', { topic: 'hits', partition: '0' })).toBe(0)
    expect(typeOf('mephisto.consumer_lag')).toEqual(['g'])
    expect(gauge('mephisto.events_active', { stream: 'countHits' })).toBe(0)
  })

  it('sends counts as deltas between flushes, with the prefix and tags it is given', async () => {
    const client = capturingClient()
    const monitor = new DatadogMonitor({ client, prefix: 'app.', tags: ['team:data'], flushIntervalMs: 0 })
    const tp = { topic: 't', partition: 0 }
    for (let i = 0; i < 5; i++) monitor.onMessageIn(tp, i, 1)
    monitor.flush()
    for (let i = 5; i < 8; i++) monitor.onMessageIn(tp, i, 1)
    monitor.flush()
    monitor.flush() // nothing new: no count line
    const received = client.lines.filter((l) => l.name === 'app.messages_received')
    expect(received.map((l) => l.value)).toEqual([5, 3])
    expect(received[0]?.tags).toEqual({ topic: 't', team: 'data' })
    // A reset starts the counts again; the next flush sends what was counted since.
    monitor.reset()
    monitor.onMessageIn(tp, 8, 1)
    monitor.flush()
    expect(client.lines.filter((l) => l.name === 'app.messages_received').map((l) => l.value)).toEqual([
      5, 3, 1,
    ])
    await monitor.close()
    const after = client.lines.length
    monitor.onMessageIn(tp, 9, 1)
    monitor.flush()
    expect(client.lines.length).toBe(after)
  })

  it("sends each agent's oldest event in progress and queued events, read from the running worker at each flush", async () => {
    const app = new App({ id: 'dd-hung', logger: 'warn' })
    const input = app.topic<string, string>('input', { partitions: 1 })
    let release!: () => void
    const hung = new Promise<void>((resolve) => {
      release = resolve
    })
    cleanups.push(async () => release())
    app.agent(
      input,
      async (stream) => {
        for await (const v of stream) if (v === 'hang') await hung
      },
      { name: 'hanger' },
    )
    const client = capturingClient()
    const datadog = new DatadogMonitor({ client, tags: { env: 'test' }, flushIntervalMs: 0 })
    app.sensors.add(datadog)
    const t = await TestApp.start(app)
    cleanups.push(() => t.stop())
    const flushed = (name: string): StatsdLine | undefined => {
      client.lines.length = 0
      datadog.flush()
      return client.lines.find((l) => l.name === name && l.tags.agent === 'hanger')
    }
    expect(flushed('mephisto.agent_oldest_event_age')).toMatchObject({ value: 0, type: 'g' })

    await t.send(input, { key: 'k', value: 'hang' })
    await t.send(input, { key: 'k', value: 'next' })
    // The watchdog ages an event from the tick that first saw it in an actor's hands (about 1 s).
    const deadline = Date.now() + 5000
    while (flushed('mephisto.agent_oldest_event_age')!.value === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20))
    const first = flushed('mephisto.agent_oldest_event_age')!.value
    expect(first).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 200))
    const age = flushed('mephisto.agent_oldest_event_age')!
    expect(age.value).toBeGreaterThan(first + 150)
    expect(age.tags).toEqual({ agent: 'hanger', env: 'test' })
    expect(client.lines.find((l) => l.name === 'mephisto.agent_events_queued')).toMatchObject({
      value: 1,
      type: 'g',
      tags: { agent: 'hanger', env: 'test' },
    })

    release()
    while (flushed('mephisto.agent_oldest_event_age')!.value > 0 && Date.now() < deadline + 5000)
      await new Promise((r) => setTimeout(r, 20))
    expect(flushed('mephisto.agent_events_queued')?.value).toBe(0)
  })

  it('samples event runtimes when asked', () => {
    const client = capturingClient()
    const monitor = new DatadogMonitor({ client, eventSampleRate: 0.25, flushIntervalMs: 0 })
    const event = { stream: 's', topic: 't', partition: 0, offset: 0 }
    monitor.onStreamEventOut(event, monitor.onStreamEventIn(event))
    expect(client.lines.find((l) => l.name === 'mephisto.event_runtime')).toMatchObject({
      sampleRate: 0.25,
      tags: { stream: 's' },
    })
  })

  it('emits every metric its README documents, and documents every metric it emits', () => {
    const documented = documentedMetrics(new URL('../README.md', import.meta.url))
    expect(documented.size).toBeGreaterThan(30)
    const client = capturingClient()
    const monitor = new DatadogMonitor({ client, flushIntervalMs: 0 })
    exerciseEveryHook(monitor)
    monitor.flush()
    const emitted = new Map<string, StatsdLine[]>()
    for (const l of client.lines) emitted.set(l.name, [...(emitted.get(l.name) ?? []), l])
    expect([...emitted.keys()].sort()).toEqual([...documented.keys()].sort())
    for (const [name, doc] of documented) {
      for (const line of emitted.get(name) ?? []) {
        expect({ name, type: line.type, tags: Object.keys(line.tags).sort() }).toEqual({
          name,
          type: TYPES[doc.type],
          tags: [...doc.labels].sort(),
        })
      }
    }
  })
})
