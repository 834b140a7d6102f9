import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { App } from '@mephisto/core'
import { TestApp } from '@mephisto/testkit'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { PrometheusMonitor } from '../src/index.js'
import { documentedMetrics, exerciseEveryHook, parseExposition, value } from './helpers.js'

interface Hit {
  userId: string
  hits: number
}

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function hitCounter() {
  const app = new App({ id: 'prom-hits', logger: 'warn', web: { port: 0 } })
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
  return { app, hits, countTopic, counts }
}

async function scrape(url: string) {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
  return parseExposition(await res.text())
}

describe('PrometheusMonitor', () => {
  it('serves /metrics on the worker web server; counters move with traffic and lag is per partition', async () => {
    const h = hitCounter()
    const prometheus = new PrometheusMonitor()
    h.app.sensors.add(prometheus)
    const t = await TestApp.start(h.app)
    cleanups.push(() => t.stop())
    const url = h.app.webUrl!

    const send = async (n: number, from: number): Promise<void> => {
      for (let i = from; i < from + n; i++) {
        // Explicit partitions: both get records whatever the keys hash to.
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
    // Read and processed, not yet committed: every record of each partition is lag.
    let { samples, types } = await scrape(url)
    const ends = t.committed('hits')
    expect([...ends.values()].every((o) => o === -1)).toBe(true)
    const perPartition = [0, 1].map((p) => t.records('hits').filter((r) => r.partition === p).length)
    for (const p of [0, 1]) {
      expect(value(samples, 'mephisto_partition_end_offset', { topic: 'hits', partition: String(p) })).toBe(
        perPartition[p],
      )
      expect(value(samples, 'mephisto_consumer_lag', { topic: 'hits', partition: String(p) })).toBe(
        perPartition[p],
      )
      expect(value(samples, 'mephisto_partition_read_offset', { topic: 'hits', partition: String(p) })).toBe(
        perPartition[p]! - 1,
      )
    }
    expect(
      value(samples, 'mephisto_partition_committed_offset', { topic: 'hits', partition: '0' }),
    ).toBeUndefined()
    expect(value(samples, 'mephisto_messages_received_total', { topic: 'hits' })).toBe(21)
    expect(value(samples, 'mephisto_events_total', { stream: 'countHits' })).toBe(20)
    expect(value(samples, 'mephisto_events_total', { stream: 'incrementCount' })).toBe(13)
    expect(value(samples, 'mephisto_messages_sent_total', { topic: 'count_topic' })).toBe(13)
    expect(value(samples, 'mephisto_table_sets_total', { table: 'counts' })).toBe(13)
    expect(
      value(samples, 'mephisto_dlq_messages_total', { topic: 'hits', dlq_topic: 'prom-hits-hits-dlq' }),
    ).toBe(1)
    expect(value(samples, 'mephisto_event_runtime_seconds_count', { stream: 'countHits' })).toBe(20)
    expect(types.get('mephisto_event_runtime_seconds')).toBe('histogram')
    expect(types.get('mephisto_messages_received_total')).toBe('counter')
    expect(types.get('mephisto_consumer_lag')).toBe('gauge')

    await t.commit()
    ;({ samples } = await scrape(url))
    for (const p of [0, 1]) {
      expect(
        value(samples, 'mephisto_partition_committed_offset', { topic: 'hits', partition: String(p) }),
      ).toBe(perPartition[p])
      expect(value(samples, 'mephisto_consumer_lag', { topic: 'hits', partition: String(p) })).toBe(0)
    }
    expect(value(samples, 'mephisto_commits_total')).toBeGreaterThanOrEqual(1)
    expect(value(samples, 'mephisto_commit_latency_seconds_count')).toBeGreaterThanOrEqual(1)

    // More traffic: the counters move by exactly that much.
    await send(8, 20)
    ;({ samples } = await scrape(url))
    expect(value(samples, 'mephisto_messages_received_total', { topic: 'hits' })).toBe(29)
    expect(value(samples, 'mephisto_events_total', { stream: 'countHits' })).toBe(28)
    expect(value(samples, 'mephisto_events_total', { stream: 'incrementCount' })).toBe(18)
    expect(
      value(samples, 'mephisto_consumer_lag', { topic: 'hits', partition: '0' })! +
        value(samples, 'mephisto_consumer_lag', { topic: 'hits', partition: '1' })!,
    ).toBe(8)
    // The scrapes themselves are web requests, by route pattern.
    expect(
      value(samples, 'mephisto_http_requests_total', { method: 'GET', route: '/metrics', status: '200' }),
    ).toBe(2)
    expect(value(samples, 'mephisto_assignments_total')).toBe(1)
    expect(value(samples, 'mephisto_rebalance_in_progress')).toBe(0)
  })

  it("reads each agent's oldest event in progress and queued events from the running worker at each scrape", async () => {
    const app = new App({ id: 'prom-hung', logger: 'warn', web: { port: 0 } })
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
    app.sensors.add(new PrometheusMonitor())
    const t = await TestApp.start(app)
    cleanups.push(() => t.stop())
    const url = app.webUrl!
    const age = async (): Promise<number | undefined> =>
      value((await scrape(url)).samples, 'mephisto_agent_oldest_event_age_seconds', { agent: 'hanger' })
    expect(await age()).toBe(0)

    await t.send(input, { key: 'k', value: 'hang' })
    await t.send(input, { key: 'k', value: 'next' })
    // The watchdog ages an event from the tick that first saw it in an actor's hands (about 1 s).
    const deadline = Date.now() + 5000
    while ((await age())! === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    const first = (await age())!
    expect(first).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 200))
    const { samples, types } = await scrape(url)
    expect(value(samples, 'mephisto_agent_oldest_event_age_seconds', { agent: 'hanger' })).toBeGreaterThan(
      first + 0.15,
    )
    expect(value(samples, 'mephisto_agent_events_queued', { agent: 'hanger' })).toBe(1)
    expect(types.get('mephisto_agent_oldest_event_age_seconds')).toBe('gauge')

    release()
    while ((await age())! > 0 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20))
    expect(await age()).toBe(0)
    expect(value((await scrape(url)).samples, 'mephisto_agent_events_queued', { agent: 'hanger' })).toBe(0)
  })

  it('mounts elsewhere with metricsHandler() and keeps its metrics to a registry of its own', async () => {
    const a = new PrometheusMonitor()
    const b = new PrometheusMonitor({ prefix: 'other_' })
    const c = new PrometheusMonitor() // same names as `a`: no clash, each has its own registry
    a.onMessageIn({ topic: 'x', partition: 0 }, 0, 3)
    const server = createServer(a.metricsHandler())
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => server.close(r)))
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/anything`)
    expect(res.headers.get('content-type')).toBe(a.contentType)
    const { samples } = parseExposition(await res.text())
    expect(value(samples, 'mephisto_messages_received_total', { topic: 'x' })).toBe(1)
    expect(value(samples, 'mephisto_messages_received_bytes_total', { topic: 'x' })).toBe(3)
    expect((await b.metrics()).includes('other_messages_received_total')).toBe(true)
    expect(
      value(parseExposition(await c.metrics()).samples, 'mephisto_messages_received_total', { topic: 'x' }),
    ).toBeUndefined()
  })

  it('registers into a given registry, with default process metrics when asked', async () => {
    const registry = new Registry()
    const monitor = new PrometheusMonitor({ registry, collectDefaultMetrics: true })
    expect(monitor.registry).toBe(registry)
    const { types } = parseExposition(await registry.metrics())
    expect(types.get('mephisto_process_cpu_user_seconds_total')).toBe('counter')
    expect(types.get('mephisto_commits_total')).toBe('counter')
  })

  it('reset() zeroes its series', async () => {
    const monitor = new PrometheusMonitor()
    exerciseEveryHook(monitor)
    monitor.reset()
    const { samples } = parseExposition(await monitor.metrics())
    expect(value(samples, 'mephisto_messages_received_total', { topic: 'orders' })).toBeUndefined()
    expect(value(samples, 'mephisto_commit_latency_seconds_count')).toBeUndefined()
    expect(value(samples, 'mephisto_commits_total')).toBe(0)
  })

  it('emits every metric its README documents, and documents every metric it emits', async () => {
    const documented = documentedMetrics(new URL('../README.md', import.meta.url))
    expect(documented.size).toBeGreaterThan(30)
    const monitor = new PrometheusMonitor()
    exerciseEveryHook(monitor)
    const { types, samples } = parseExposition(await monitor.metrics())
    expect([...types.keys()].sort()).toEqual([...documented.keys()].sort())
    for (const [name, doc] of documented) {
      expect({ name, type: types.get(name) }).toEqual({ name, type: doc.type })
      // Every documented series has a sample with exactly the documented labels.
      const series = samples.filter((s) => s.name === name || s.name === `${name}_count`)
      expect(series.length, `${name} has no samples`).toBeGreaterThan(0)
      for (const s of series)
        expect({ name, labels: Object.keys(s.labels).sort() }).toEqual({
          name,
          labels: [...doc.labels].sort(),
        })
    }
  })

  it('the Grafana dashboard queries only documented metrics', () => {
    const documented = documentedMetrics(new URL('../README.md', import.meta.url))
    const dashboard = JSON.parse(
      readFileSync(new URL('../../../docker/grafana/dashboard.json', import.meta.url), 'utf8'),
    ) as {
      panels: { targets?: { expr: string }[] }[]
    }
    const queried = new Set<string>()
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        for (const [name] of target.expr.matchAll(/mephisto_[a-z_]+/g))
          queried.add(name.replace(/_(bucket|sum|count)$/, ''))
      }
    }
    expect(queried.size).toBeGreaterThan(20)
    for (const name of queried) expect(documented.has(name), `${name} is not in the README`).toBe(true)
  })
})
