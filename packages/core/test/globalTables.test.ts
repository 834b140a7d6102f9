import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

let running: TestApp[] = []
afterEach(async () => {
  for (const t of running) if (t.app.running) await t.stop()
  running = []
})

interface Order {
  user: string
  item: string
}

/** Users' names in a global table (written from one topic), orders enriched from it on every worker. */
function enricher(enriched: string[]) {
  const app = new App({ id: 'global', logger: 'silent', commitIntervalMs: 100 })
  const users = app.topic<string, string>('users', { partitions: 4 })
  const orders = app.topic<string, Order>('orders', { partitions: 4 })
  const names = app.globalTable<string, string>('names')
  app.agent(users, async (stream) => {
    for await (const [user, name] of stream.items()) names.set(user, name)
  })
  app.agent(orders, async (stream) => {
    for await (const order of stream) enriched.push(`${order.item} for ${await names.get(order.user)}`)
  })
  return { app, users, orders, names }
}

const USERS = Array.from({ length: 16 }, (_, i) => `u${i}`)

describe('global tables', () => {
  it('every worker reads every key locally, whichever worker wrote it', async () => {
    const enriched: string[] = []
    const a = enricher(enriched)
    const b = enricher(enriched)
    const ta = await TestApp.start(a.app)
    const tb = await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock })
    running = [ta, tb]
    for (const u of USERS) await ta.send(a.users, { key: u, value: `name of ${u}` })
    for (const t of running) await t.settle()
    // Committed, then followed by the other worker (every standbyIntervalMs).
    await ta.advance(1_000)
    await ta.advance(1_000)
    for (const t of running) await t.settle()
    for (const w of [a, b]) {
      for (const u of USERS) expect(await w.names.get(u), u).toBe(`name of ${u}`)
    }
    // Orders of every user, processed on both workers, all enriched.
    for (const u of USERS) await ta.send(a.orders, { key: u, value: { user: u, item: `item of ${u}` } })
    for (const t of running) await t.settle()
    expect(enriched.sort()).toEqual(USERS.map((u) => `item of ${u} for name of ${u}`).sort())
  })

  it('a worker that starts later has all of it before it is ready; a crash of another leaves its reads working', async () => {
    const a = enricher([])
    const ta = await TestApp.start(a.app)
    running = [ta]
    for (const u of USERS) await ta.send(a.users, { key: u, value: `name of ${u}` })
    await ta.settle()
    await ta.advance(1_000)
    const b = enricher([])
    const tb = await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock })
    running.push(tb)
    for (const u of USERS) expect(await b.names.get(u), u).toBe(`name of ${u}`)
    await ta.crash()
    await tb.settle()
    for (const u of USERS) expect(await b.names.get(u), u).toBe(`name of ${u}`)
  })
})

describe('stream-global-table join', () => {
  it('stream.join(globalTable) enriches on every worker, whatever the table partitions', async () => {
    const make = (out: string[]) => {
      const app = new App({ id: 'global-join', logger: 'silent', commitIntervalMs: 100 })
      const users = app.topic<string, string>('users', { partitions: 3 })
      const orders = app.topic<string, string>('orders', { partitions: 4 })
      // Not co-partitioned with orders (3 partitions against 4): a global table need not be.
      const names = app.globalTable<string, string>('names', { partitions: 3 })
      app.agent(users, async (stream) => {
        for await (const [user, name] of stream.items()) names.set(user, name)
      })
      app.agent(orders, async (stream) => {
        for await (const [item, name] of stream.join(names)) out.push(`${item} for ${name}`)
      })
      return { app, users, orders }
    }
    const out: string[] = []
    const a = make(out)
    const b = make(out)
    const ta = await TestApp.start(a.app)
    const tb = await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock })
    running = [ta, tb]
    for (const u of USERS) await ta.send(a.users, { key: u, value: `name of ${u}` })
    for (const t of running) await t.settle()
    await ta.advance(1_000)
    await ta.advance(1_000)
    for (const u of USERS) await ta.send(a.orders, { key: u, value: `item of ${u}` })
    for (const t of running) await t.settle()
    expect(out.sort()).toEqual(USERS.map((u) => `item of ${u} for name of ${u}`).sort())
    expect(a.app.running && b.app.running).toBe(true)
  })
})
