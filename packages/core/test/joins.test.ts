import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { AppOptions } from '../src/index.js'
import { App, MemoryBroker } from '../src/index.js'
import { seededRandom } from './helpers.js'

interface Click {
  user: string
  page: string
}
interface Profile {
  name: string
}

let t: TestApp | undefined
afterEach(async () => {
  await t?.stop().catch(() => {})
  t = undefined
})

/** Starts `app` on the testkit; the test's TestApp is stopped after it. */
async function start(app: App): Promise<TestApp> {
  t = await TestApp.start(app)
  return t
}

/**
 * Clicks enriched with user profiles: an agent keeps the `profiles` table from the profiles topic,
 * another joins each click with it. `tablePartitions` lets a test break the co-partitioning.
 */
function enricher(type: 'inner' | 'left', tablePartitions = 4) {
  const app = new App({ id: `enrich-${type}`, logger: 'silent' })
  const clicks = app.topic<string, Click>('clicks', { partitions: 4 })
  const profileTopic = app.topic<string, Profile>('profiles', { partitions: tablePartitions })
  // A default, which a join does not count as a stored value.
  const profiles = app.table<string, Profile>('profiles', {
    partitions: tablePartitions,
    default: () => ({ name: '?' }),
  })
  const joined: [Click, Profile | undefined][] = []
  app.agent(profileTopic, async function keepProfiles(stream) {
    for await (const [user, profile] of stream.items()) profiles.set(user, profile)
  })
  app.agent(clicks, async function enrich(stream) {
    const pairs = type === 'inner' ? stream.join(profiles) : stream.join(profiles, { type: 'left' })
    for await (const pair of pairs) joined.push(pair)
  })
  return { app, clicks, profileTopic, profiles, joined }
}

describe('stream-table join', () => {
  it('inner: pairs each event with the stored value of its key; keys with no stored value are dropped', async () => {
    const e = enricher('inner')
    const t = await start(e.app)
    await t.send(e.profileTopic, { key: 'ann', value: { name: 'Ann' } })
    await t.send(e.profileTopic, { key: 'bob', value: { name: 'Bob' } })
    await t.settle()
    for (const [user, page] of [
      ['ann', '/a'],
      ['cid', '/c'],
      ['bob', '/b'],
      ['ann', '/d'],
    ] as const) {
      await t.send(e.clicks, { key: user, value: { user, page } })
    }
    await t.settle()
    const byPage = [...e.joined].sort((a, b) => a[0].page.localeCompare(b[0].page))
    expect(byPage).toEqual([
      [{ user: 'ann', page: '/a' }, { name: 'Ann' }],
      [{ user: 'bob', page: '/b' }, { name: 'Bob' }],
      [{ user: 'ann', page: '/d' }, { name: 'Ann' }],
    ])
    // The dropped click was acked: everything is committed.
    await t.commit()
    const ends = [...t.broker.endOffsets('clicks')].filter(([, end]) => end > 0)
    expect(ends.map(([p]) => [p, t.committed(e.clicks).get(p)])).toEqual(ends)
  })

  it('left: keys with no stored value come with undefined, and a later value is seen', async () => {
    const e = enricher('left')
    const t = await start(e.app)
    await t.send(e.clicks, { key: 'cid', value: { user: 'cid', page: '/1' } })
    await t.settle()
    await t.send(e.profileTopic, { key: 'cid', value: { name: 'Cid' } })
    await t.settle()
    await t.send(e.clicks, { key: 'cid', value: { user: 'cid', page: '/2' } })
    await t.settle()
    expect(e.joined).toEqual([
      [{ user: 'cid', page: '/1' }, undefined],
      [{ user: 'cid', page: '/2' }, { name: 'Cid' }],
    ])
  })

  for (const tablePartitions of [2, 8]) {
    it(`stops the worker with a ConfigurationError when the table has ${tablePartitions} partitions and the topic 4`, async () => {
      const e = enricher('inner', tablePartitions)
      const t = await start(e.app)
      // Partition 0 exists in both, so no read could notice: the join checks the counts.
      await t.sendRaw('clicks', {
        key: 'ann',
        value: JSON.stringify({ user: 'ann', page: '/a' }),
        partition: 0,
      })
      const failure = await t.settle().then(
        () => undefined,
        (err: unknown) => err,
      )
      expect(failure).toMatchObject({ code: 'CONFIGURATION' })
      expect(String((failure as Error).message)).toMatch(
        new RegExp(`topic clicks has 4 partition\\(s\\) but table profiles has ${tablePartitions}`),
      )
      expect(e.joined).toEqual([])
      // Nothing acked: the click is processed again once the configuration is fixed.
      expect(t.committed(e.clicks).get(0) ?? -1).toBeLessThanOrEqual(0)
    })
  }
})

interface Ev {
  id: string
}
const T0 = 1_767_225_600_000 // 2026-01-01: event times, independent of the fake clock

/** Orders joined with payments within 1 s of event time, with 500 ms of grace. */
function payments(type: 'inner' | 'left', options: Partial<AppOptions> = {}, partitions = 1) {
  const app = new App({ id: `pay-${type}`, logger: 'silent', ...options })
  const orders = app.topic<string, Ev>('orders', { partitions })
  const paymentTopic = app.topic<string, Ev>('payments', { partitions })
  const paid = app.join(orders, paymentTopic, { name: 'paid', withinMs: 1000, graceMs: 500, type })
  const lefts = app.tables.find((table) => table.name === 'paid-join-left')!
  /** Sends an event of `topic` stamped `T0 + ms`, to partition `partition`; settles unless told not to. */
  const send = async (t: TestApp, topic: 'orders' | 'payments', key: string, ms: number, partition = 0) => {
    await t.sendRaw(topic, {
      key,
      value: JSON.stringify({ id: `${topic[0]}${ms}` }),
      timestamp: T0 + ms,
      partition,
    })
  }
  /** The join's results, committed, as `key left-id right-id` (`-` for a miss). */
  const results = (t: TestApp) =>
    t.sent(paid).map((r) => `${r.key} ${r.value?.left.id} ${r.value?.right?.id ?? '-'}`)
  return { app, paid, lefts, send, results }
}

describe('stream-stream join', () => {
  it('inner: pairs events of one key whose times are within withinMs, whichever side comes first', async () => {
    const j = payments('inner')
    const t = await start(j.app)
    const steps: [topic: 'orders' | 'payments', key: string, ms: number][] = [
      ['orders', 'a', 0],
      ['payments', 'a', 800], // after its order
      ['payments', 'b', 2000],
      ['orders', 'b', 1500], // before its payment, which came first
      ['orders', 'c', 3000],
      ['orders', 'd', 2600], // 400 ms behind the orders' stream time: within grace
      ['payments', 'd', 2700],
      ['orders', 'e', 4000],
      ['orders', 'f', 3600],
      ['orders', 'f', 4400],
      ['payments', 'f', 4500], // joins both orders of f
      ['payments', 'e', 5100], // 1100 ms after its order: no pair
    ]
    for (const [topic, key, ms] of steps) {
      await j.send(t, topic, key, ms)
      await t.settle()
    }
    expect(j.results(t)).toEqual([
      'a o0 p800',
      'b o1500 p2000',
      'd o2600 p2700',
      'f o3600 p4500',
      'f o4400 p4500',
    ])
  })

  it('inner: a side far ahead of the other still joins; buffered events expire, late events are dropped', async () => {
    const j = payments('inner')
    const t = await start(j.app)
    await j.send(t, 'orders', 'a', 0)
    await j.send(t, 'orders', 'x', 5000) // the orders run 5 s ahead of the payments
    await t.settle()
    await j.send(t, 'payments', 'a', 100) // joins: judged by the payments' own stream time
    await t.settle()
    expect(j.results(t)).toEqual(['a o0 p100'])
    // The payments' stream time passes 5000 + 1000 + 500: no payment that may still come can
    // join either order, so both leave the buffer.
    await j.send(t, 'payments', 'y', 6501)
    await t.settle()
    const buffered = async () => {
      const keys: string[] = []
      for await (const [key] of j.lefts.entries()) keys.push(key as string)
      return keys
    }
    expect(await buffered()).toEqual([])
    await j.send(t, 'orders', 'w', 9500)
    await j.send(t, 'payments', 'w', 5900) // 601 ms behind the payments' stream time: late
    await t.settle()
    expect(j.results(t)).toEqual(['a o0 p100'])
    expect(await buffered()).toEqual(['w'])
  })

  it('left: a left event nothing joined comes out as { left, right: null } once the right side has passed it', async () => {
    const j = payments('left')
    const t = await start(j.app)
    const step = async (topic: 'orders' | 'payments', key: string, ms: number) => {
      await j.send(t, topic, key, ms)
      await t.settle()
    }
    await step('orders', 'a', 0)
    await step('payments', 'a', 300) // a joins: it owes no miss
    await step('orders', 'b', 100) // never paid
    await step('orders', 'e', 1000)
    await step('payments', 'e', 2100) // 1100 ms apart: no pair
    await step('payments', 'c', 1600) // the payments' time is 2100: b (100 + 1500) was passed already
    expect(j.results(t)).toEqual(['a o0 p300', 'b o100 -'])
    await step('payments', 'g', 2500) // e expires past 1000 + 1500, not at it
    expect(j.results(t)).toHaveLength(2)
    await step('payments', 'g', 2501)
    expect(j.results(t)).toEqual(['a o0 p300', 'b o100 -', 'e o1000 -'])
    await step('orders', 'h', 400) // 600 ms behind the orders' stream time: late, answered at once
    expect(j.results(t).at(-1)).toBe('h o400 -')
  })

  it('left: the first right event of a partition answers the left events it has passed', async () => {
    const j = payments('left')
    const t = await start(j.app)
    await j.send(t, 'orders', 'a', 0)
    await t.settle()
    await j.send(t, 'payments', 'b', 1501)
    await t.settle()
    expect(j.results(t)).toEqual(['a o0 -'])
  })

  it('checks co-partitioning: where the join is declared, and on the broker at the first event', async () => {
    const app = new App({ id: 'pay-bad', logger: 'silent' })
    const orders = app.topic<string, Ev>('orders', { partitions: 2 })
    const wide = app.topic<string, Ev>('payments', { partitions: 3 })
    expect(() => app.join(orders, wide, { name: 'paid', withinMs: 10 })).toThrow(
      /topic orders is declared with 2 partition\(s\) and payments with 3/,
    )
    // Declared alike, but the payments topic exists on the broker with 3 partitions.
    const j = payments('inner', {}, 2)
    const broker = new MemoryBroker({ name: 'pay-bad' })
    broker.createTopic({ name: 'payments', partitions: 3 })
    t = await TestApp.start(j.app, { broker })
    await j.send(t, 'orders', 'a', 0)
    const failure = await t.settle().then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(failure).toMatchObject({ code: 'CONFIGURATION' })
    expect((failure as Error).message).toMatch(/orders 2, payments 3, pay-inner-paid-join 2/)
  })

  for (const seed of [1, 7, 42]) {
    it(`exactly_once: a crash mid-join loses no result and repeats none (seed ${seed})`, async () => {
      const random = seededRandom(seed)
      const j = payments(
        'left',
        { processingGuarantee: 'exactly_once', commitEvery: 10 + Math.floor(random() * 60) },
        2,
      )
      // Events in time order on each topic, keys k0..k11 (key i lives in partition i % 2).
      const events: { topic: 'orders' | 'payments'; key: string; ms: number; partition: number }[] = []
      for (let i = 0; i < 400; i++) {
        const k = Math.floor(random() * 12)
        events.push({
          topic: random() < 0.5 ? 'orders' : 'payments',
          key: `k${k}`,
          ms: i * 150,
          partition: k % 2,
        })
      }
      // Far-off payments move each partition's right stream time past every order: all misses are due.
      for (const partition of [0, 1])
        events.push({ topic: 'payments', key: `end${partition}`, ms: 10_000_000, partition })
      const expected: string[] = []
      for (const o of events.filter((e) => e.topic === 'orders')) {
        const pays = events.filter(
          (p) => p.topic === 'payments' && p.key === o.key && Math.abs(p.ms - o.ms) <= 1000,
        )
        if (pays.length === 0) expected.push(`${o.key} o${o.ms} -`)
        for (const p of pays) expected.push(`${o.key} o${o.ms} p${p.ms}`)
      }
      let handed = 0
      const crashAfter = 50 + Math.floor(random() * 300)
      let crashing: Promise<void> | undefined
      let t!: TestApp
      j.app.sensors.add({
        onStreamEventIn() {
          if (crashing === undefined && ++handed === crashAfter) crashing = t.crash()
        },
      })
      t = await start(j.app)
      for (const e of events) await j.send(t, e.topic, e.key, e.ms, e.partition)
      await t.settle()
      expect(crashing).toBeDefined()
      await crashing
      await t.restart()
      await t.settle()
      await t.commit()
      expect(j.results(t).sort()).toEqual(expected.sort())
    })
  }
})
