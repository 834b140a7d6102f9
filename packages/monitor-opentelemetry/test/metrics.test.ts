import { App } from '@mephisto/core'
import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { OpenTelemetryMonitor } from '../src/index.js'
import {
  documentedMetrics,
  exerciseEveryHook,
  kindOf,
  meterSdk,
  prometheusMetrics,
  value,
} from './helpers.js'

interface Hit {
  userId: string
  hits: number
}

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function sdk() {
  const s = meterSdk()
  cleanups.push(s.shutdown)
  return s
}

function hitCounter() {
  const app = new App({ id: 'otel-hits', logger: 'warn' })
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

const TOPIC = 'messaging.destination.name'
const PARTITION = 'messaging.destination.partition.id'
const AGENT = 'mephisto.agent'

describe('OpenTelemetryMonitor', () => {
  it("exports the monitor's counts through the meter: counters move with traffic, lag is per partition", async () => {
    const { meterProvider, collect } = sdk()
    const h = hitCounter()
    const otel = new OpenTelemetryMonitor({ meterProvider })
    h.app.sensors.add(otel)
    const t = await TestApp.start(h.app)
    cleanups.push(() => t.stop())

    const send = async (n: number, from: number): Promise<void> => {
      for (let i = from; i < from + n; i++) {
        await t.send(h.hits, {
          key: `u${i % 4}`,
          partition: i % 2,
          value: { userId: `u${i % 4}`, hits: i % 3 === 0 ? 10 : 30 },
        })
      }
      await t.settle()
    }
    await send(20, 0)
    await t.sendRaw('hits', { key: 'u0', value: '{broken', partition: 0 })
    await t.settle()

    let m = await collect()
    const perPartition = [0, 1].map((p) => t.records('hits').filter((r) => r.partition === p).length)
    for (const p of [0, 1]) {
      const where = { [TOPIC]: 'hits', [PARTITION]: String(p) }
      expect(value(m, 'mephisto.partition.end_offset', where)).toBe(perPartition[p])
      // Read and processed, not yet committed: every record of the partition is lag.
      expect(value(m, 'mephisto.consumer.lag', where)).toBe(perPartition[p])
      expect(value(m, 'mephisto.partition.read_offset', where)).toBe(perPartition[p]! - 1)
    }
    expect(value(m, 'mephisto.partition.committed_offset', { [TOPIC]: 'hits' })).toBeUndefined()
    expect(value(m, 'mephisto.messages.received', { [TOPIC]: 'hits' })).toBe(21)
    expect(value(m, 'mephisto.events', { [AGENT]: 'countHits' })).toBe(20)
    expect(value(m, 'mephisto.events', { [AGENT]: 'incrementCount' })).toBe(13)
    expect(value(m, 'mephisto.events.active', { [AGENT]: 'countHits' })).toBe(0)
    expect(value(m, 'mephisto.messages.sent', { [TOPIC]: 'count_topic' })).toBe(13)
    expect(value(m, 'mephisto.table.sets', { 'mephisto.table': 'counts' })).toBe(13)
    expect(
      value(m, 'mephisto.dlq.messages', { [TOPIC]: 'hits', 'mephisto.dlq.topic': 'otel-hits-hits-dlq' }),
    ).toBe(1)
    // Every event timed by default: the histogram's count is the event count.
    expect(value(m, 'mephisto.event.duration', { [AGENT]: 'countHits' })).toBe(20)
    expect(m.get('mephisto.event.duration')?.descriptor.unit).toBe('s')
    expect(value(m, 'mephisto.agent.events.queued', { [AGENT]: 'countHits' })).toBe(0)

    await t.commit()
    m = await collect()
    for (const p of [0, 1]) {
      const where = { [TOPIC]: 'hits', [PARTITION]: String(p) }
      expect(value(m, 'mephisto.partition.committed_offset', where)).toBe(perPartition[p])
      expect(value(m, 'mephisto.consumer.lag', where)).toBe(0)
    }
    expect(value(m, 'mephisto.commits')).toBeGreaterThanOrEqual(1)
    expect(value(m, 'mephisto.commit.duration')).toBeGreaterThanOrEqual(1)

    // More traffic: the counters move by exactly that much.
    await send(8, 20)
    m = await collect()
    expect(value(m, 'mephisto.messages.received', { [TOPIC]: 'hits' })).toBe(29)
    expect(value(m, 'mephisto.events', { [AGENT]: 'incrementCount' })).toBe(18)
    expect(value(m, 'mephisto.assignments')).toBe(1)
    expect(value(m, 'mephisto.rebalance.in_progress')).toBe(0)

    // Closed: the SDK no longer reads the monitor's counts (it repeats the last values it read).
    otel.close()
    const before = otel.snapshot().messages.receivedTotal
    await send(4, 28)
    m = await collect()
    expect(otel.snapshot().messages.receivedTotal).toBeGreaterThanOrEqual(before + 4)
    expect(value(m, 'mephisto.messages.received', { [TOPIC]: 'hits' })).toBe(29)
  })

  it('emits every metric its README documents, with its instrument, unit and attributes, and no other', async () => {
    const documented = documentedMetrics(new URL('../README.md', import.meta.url))
    const { meterProvider, collect } = sdk()
    const monitor = new OpenTelemetryMonitor({ meterProvider })
    exerciseEveryHook(monitor)
    const m = await collect()
    expect([...m.keys()].sort()).toEqual([...documented.keys()].sort())
    for (const [name, doc] of documented) {
      const metric = m.get(name)!
      expect({ name, kind: kindOf(metric), unit: metric.descriptor.unit }).toEqual({
        name,
        kind: doc.kind,
        unit: doc.unit,
      })
      const points = metric.dataPoints as { attributes: Record<string, unknown> }[]
      expect(points.length, `${name} has no data points`).toBeGreaterThan(0)
      for (const p of points)
        expect({ name, attributes: Object.keys(p.attributes).sort() }).toEqual({
          name,
          attributes: [...doc.attributes].sort(),
        })
    }
  })

  it("mirrors @mephisto/monitor-prometheus's metric set: one OTel metric for each of its metrics", () => {
    const documented = documentedMetrics(new URL('../README.md', import.meta.url))
    const prometheus = prometheusMetrics(new URL('../../monitor-prometheus/README.md', import.meta.url))
    expect(prometheus.length).toBeGreaterThan(30)
    const mirrored = [...documented.values()].map((d) => d.prometheus)
    expect(mirrored.sort()).toEqual([...prometheus].sort())
  })

  it('takes a prefix and bucket boundaries, and reset() zeroes the counts', async () => {
    const { meterProvider, collect } = sdk()
    const monitor = new OpenTelemetryMonitor({ meterProvider, prefix: 'shop.', buckets: [0.001, 1] })
    exerciseEveryHook(monitor)
    let m = await collect()
    expect(value(m, 'shop.messages.received', { [TOPIC]: 'orders' })).toBe(1)
    const histogram = m.get('shop.commit.duration')!.dataPoints[0]!.value as {
      buckets: { boundaries: number[] }
    }
    expect(histogram.buckets.boundaries).toEqual([0.001, 1])
    expect(value(m, 'shop.commits')).toBe(1)
    monitor.reset()
    m = await collect()
    expect(value(m, 'shop.commits')).toBe(0)
  })
})
