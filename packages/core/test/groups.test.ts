import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { quietApp } from './helpers.js'

const running: TestApp[] = []
afterEach(async () => {
  for (const t of running.splice(0).reverse()) if (t.app.running) await t.stop()
})

/** One worker of the click counter. Called once per worker: each gets its own App. */
function clickCounter(worker: string) {
  const app = quietApp('clicks', { topicPartitions: 4 })
  const clicks = app.topic<string, string>('clicks', { partitions: 4 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 4 })
  const partitionsSeen = new Set<number>()
  let processed = 0
  app.agent(
    clicks,
    async (stream) => {
      for await (const e of stream.events()) {
        partitionsSeen.add(e.partition)
        processed++
        counts.set(e.value, (await counts.get(e.value)) + 1)
      }
    },
    { name: 'count' },
  )
  return {
    worker,
    app,
    clicks,
    counts,
    partitionsSeen,
    get processed() {
      return processed
    },
  }
}

async function tableContents(
  counts: ReturnType<typeof clickCounter>['counts'],
): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for await (const [k, v] of counts.entries()) out.set(k, v)
  return out
}

const users = Array.from({ length: 12 }, (_, i) => `user-${i}`)

async function sendClicks(
  t: TestApp,
  w: ReturnType<typeof clickCounter>,
  rounds: number,
  expected: Map<string, number>,
) {
  for (let r = 0; r < rounds; r++) {
    for (const u of users) {
      await t.send(w.clicks, { key: u, value: u })
      expected.set(u, (expected.get(u) ?? 0) + 1)
    }
  }
}

describe('two workers in one consumer group', () => {
  it('split the partitions between them', async () => {
    const w1 = clickCounter('w1')
    const w2 = clickCounter('w2')
    const t1 = await TestApp.start(w1.app)
    running.push(t1)
    const t2 = await TestApp.start(w2.app, { broker: t1.broker, clock: t1.clock })
    running.push(t2)

    const expected = new Map<string, number>()
    await sendClicks(t1, w1, 3, expected)
    await t1.settle()

    expect(w1.processed + w2.processed).toBe(36)
    expect(w1.partitionsSeen.size).toBeGreaterThan(0)
    expect(w2.partitionsSeen.size).toBeGreaterThan(0)
    const overlap = [...w1.partitionsSeen].filter((p) => w2.partitionsSeen.has(p))
    expect(overlap).toEqual([])
    expect(new Set([...w1.partitionsSeen, ...w2.partitionsSeen])).toEqual(new Set([0, 1, 2, 3]))

    // Each worker's table holds only its own partitions; together they hold every count once.
    const c1 = await tableContents(w1.counts)
    const c2 = await tableContents(w2.counts)
    expect([...c1.keys()].filter((k) => c2.has(k))).toEqual([])
    expect(new Map([...c1, ...c2])).toEqual(expected)
  })

  it('after one stops, the other owns every partition with its table state', async () => {
    const w1 = clickCounter('w1')
    const w2 = clickCounter('w2')
    const t1 = await TestApp.start(w1.app)
    running.push(t1)
    const t2 = await TestApp.start(w2.app, { broker: t1.broker, clock: t1.clock })
    running.push(t2)
    const expected = new Map<string, number>()
    await sendClicks(t1, w1, 2, expected)
    await t1.settle()
    expect(w2.processed).toBeGreaterThan(0)

    await t2.stop()
    await t1.settle()
    const before = w1.processed
    await sendClicks(t1, w1, 2, expected)
    await t1.settle()
    // Nothing w2 committed is processed again: w1 got only the new events.
    expect(w1.processed - before).toBe(24)
    expect(await tableContents(w1.counts)).toEqual(expected)
    for (const u of users) expect(await w1.counts.get(u)).toBe(4)
  })

  it('after one crashes, the other takes over and no count is lost', async () => {
    const w1 = clickCounter('w1')
    const w2 = clickCounter('w2')
    const t1 = await TestApp.start(w1.app)
    running.push(t1)
    const t2 = await TestApp.start(w2.app, { broker: t1.broker, clock: t1.clock })
    running.push(t2)
    const expected = new Map<string, number>()
    await sendClicks(t1, w1, 2, expected)
    await t1.settle()
    await t2.commit()
    // Processed by w2 but not committed: redelivered to w1 after the crash.
    await sendClicks(t1, w1, 1, expected)
    await t1.settle()
    await t2.crash()
    await t1.settle()
    await sendClicks(t1, w1, 1, expected)
    await t1.settle()
    const counts = await tableContents(w1.counts)
    for (const u of users) {
      expect(counts.get(u)).toBe(expected.get(u))
    }
  })

  it('a restarted worker joins again and gets its share back', async () => {
    const w1 = clickCounter('w1')
    const w2 = clickCounter('w2')
    const t1 = await TestApp.start(w1.app)
    running.push(t1)
    const t2 = await TestApp.start(w2.app, { broker: t1.broker, clock: t1.clock })
    running.push(t2)
    const expected = new Map<string, number>()
    await sendClicks(t1, w1, 1, expected)
    await t1.settle()
    await t2.stop()
    await t1.settle()
    await t2.restart()
    w1.partitionsSeen.clear()
    w2.partitionsSeen.clear()
    await sendClicks(t1, w1, 2, expected)
    await t1.settle()
    expect(w1.partitionsSeen.size).toBeGreaterThan(0)
    expect(w2.partitionsSeen.size).toBeGreaterThan(0)
    const c = new Map([...(await tableContents(w1.counts)), ...(await tableContents(w2.counts))])
    expect(c).toEqual(expected)
  })

  it('a rebalance does not wait for a partial take() batch to time out', async () => {
    function batcher() {
      const app = quietApp('batcher', { topicPartitions: 2 })
      const numbers = app.topic<string, number>('numbers', { partitions: 2 })
      const got: number[] = []
      app.agent(numbers, async (stream) => {
        for await (const batch of stream.take(100, 60_000)) got.push(...batch)
      })
      return { app, numbers, got }
    }
    const b1 = batcher()
    const t1 = await TestApp.start(b1.app)
    running.push(t1)
    for (let i = 0; i < 10; i++) await t1.send(b1.numbers, { value: i, partition: i % 2 })
    await t1.settle()
    expect(b1.got).toEqual([])
    const b2 = batcher()
    const began = Date.now()
    const t2 = await TestApp.start(b2.app, { broker: t1.broker, clock: t1.clock })
    running.push(t2)
    expect(Date.now() - began).toBeLessThan(5000)
    // The revoked partition's events were handed over and committed before it moved: none twice.
    await t1.advance(60_000)
    expect([...b1.got, ...b2.got].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })
})
