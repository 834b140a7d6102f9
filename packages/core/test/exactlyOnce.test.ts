import { TestApp } from '@mephisto/testkit'
import { describe, expect, it } from 'vitest'
import { App, MemoryBroker, MemoryTransport } from '../src/index.js'
import type { Hit } from './helpers.js'
import { hitCounter, seededRandom } from './helpers.js'

const EVENTS = 6_000
const USERS = 7

async function produce(
  t: TestApp,
  random: () => number,
  from: number,
  to: number,
  expected: Map<string, number>,
) {
  for (let i = from; i < to; i++) {
    const userId = `user-${Math.floor(random() * USERS)}`
    const hit: Hit = { userId, hits: Math.floor(random() * 40), timestamp: i }
    if (hit.hits > 20) expected.set(userId, (expected.get(userId) ?? 0) + 1)
    await t.sendRaw('hit_count', { key: userId, value: JSON.stringify(hit) })
  }
}

/** count_topic must hold each hit over 20 exactly once: no record of an aborted transaction. */
function expectOutputsOnce(t: TestApp, expected: Map<string, number>): void {
  const seen = new Map<number, number>()
  for (const r of t.broker.records('count_topic')) {
    const hit = JSON.parse(r.value!.toString()) as Hit
    seen.set(hit.timestamp, (seen.get(hit.timestamp) ?? 0) + 1)
  }
  const total = [...expected.values()].reduce((a, b) => a + b, 0)
  expect(seen.size).toBe(total)
  expect([...seen.values()].every((n) => n === 1)).toBe(true)
}

/**
 * Exactly-once on the memory broker: a transaction is applied whole when it commits, so a crash
 * at any point loses only what no transaction holds yet, and the restart redoes exactly that.
 */
describe('exactly_once', () => {
  // One transactional producer per partition number (kafkajs' model), and one per worker whose
  // commits the group fences (KIP-447: the memory broker's groupTransactions, platformatic's).
  const runs = [
    { seed: 3, groupTransactions: false },
    { seed: 11, groupTransactions: false },
    { seed: 2024, groupTransactions: false },
    { seed: 3, groupTransactions: true },
    { seed: 11, groupTransactions: true },
    { seed: 2024, groupTransactions: true },
  ]
  for (const { seed, groupTransactions } of runs) {
    const model = groupTransactions ? 'one producer per worker' : 'one producer per partition'
    it(`counts every hit once across a crash at a random point (seed ${seed}, ${model})`, async () => {
      const random = seededRandom(seed)
      const h = hitCounter({
        processingGuarantee: 'exactly_once',
        commitEvery: 50 + Math.floor(random() * 400),
      })
      const crashAfter = 1 + Math.floor(random() * (EVENTS - 1))
      let handed = 0
      let crashing: Promise<void> | undefined
      let t!: TestApp
      h.app.sensors.add({
        onStreamEventIn(e) {
          if (crashing === undefined && e.topic === 'hit_count' && ++handed === crashAfter)
            crashing = t.crash()
        },
      })
      t = await TestApp.start(h.app, { broker: new MemoryBroker({ groupTransactions }) })
      const expected = new Map<string, number>()
      await produce(t, random, 0, EVENTS, expected)
      await t.settle()
      expect(crashing).toBeDefined()
      await crashing
      await t.restart()
      await t.settle()
      for (const [userId, n] of expected) expect(await h.counts.get(userId), userId).toBe(n)
      expect(h.app.worker?.transactionProducers()).toEqual(
        groupTransactions ? { model: 'worker', producers: 1 } : { model: 'partition', producers: 4 },
      )
      await t.stop()
      expectOutputsOnce(t, expected)
      expect(t.committed(h.hits)).toEqual(t.broker.endOffsets('hit_count'))
    })
  }

  it('commits outputs, changelog and offsets together: nothing shows before the commit', async () => {
    const h = hitCounter({ processingGuarantee: 'exactly_once', commitIntervalMs: 60_000 })
    const t = await TestApp.start(h.app)
    await t.sendRaw('hit_count', { key: 'a', value: JSON.stringify({ userId: 'a', hits: 30, timestamp: 1 }) })
    await t.settle()
    // Processed by the first agent, but its output waits for the transaction.
    expect(t.broker.records('count_topic')).toHaveLength(0)
    expect(t.broker.records('hit-counter-major-count-changelog')).toHaveLength(0)
    await t.advance(60_000)
    await t.settle()
    await t.advance(60_000)
    await t.settle()
    expect(t.broker.records('count_topic')).toHaveLength(1)
    expect(t.broker.records('hit-counter-major-count-changelog')).toHaveLength(1)
    expect(await h.counts.get('a')).toBe(1)
    await t.stop()
  })

  it('a fenced worker rolls back to its last commit, starts again and still counts exactly', async () => {
    const h = hitCounter({ processingGuarantee: 'exactly_once', commitEvery: 100 })
    const t = await TestApp.start(h.app)
    const random = seededRandom(5)
    const expected = new Map<string, number>()
    await produce(t, random, 0, 1000, expected)
    await t.settle()
    const first = h.app.worker
    // Another producer takes the transactional id of partition 0 (count_topic and the table live
    // there): the worker's next transaction on it is refused.
    const zombieMaker = new MemoryTransport(t.broker)
    await zombieMaker.transactionalProducer(first!.transactionalId(0))
    await produce(t, random, 1000, 2000, expected)
    for (let i = 0; i < 200 && (h.app.worker === first || !h.app.running); i++) {
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(h.app.worker).not.toBe(first)
    expect(first!.crashReason).toMatchObject({ code: 'FENCED' })
    // The restart is counted, with why.
    expect(h.app.monitor.snapshot().restarts).toMatchObject({
      total: 1,
      lastReason: expect.stringMatching(/fenced/i),
    })
    await t.settle()
    for (const [userId, n] of expected) expect(await h.counts.get(userId), userId).toBe(n)
    await t.stop()
    expectOutputsOnce(t, expected)
  })

  it('refuses sendAndWait inside an agent with a clear error, and stops the worker (a mistake in the code, not bad data)', async () => {
    const h = hitCounter({ processingGuarantee: 'exactly_once' })
    const waiter = h.app.agent(
      h.countTopic,
      async (stream) => {
        for await (const hit of stream) await h.countTopic.sendAndWait({ key: hit.userId, value: hit })
      },
      { name: 'waiter', onError: 'skip' },
    )
    const skips: unknown[] = []
    h.app.sensors.add({ onSkip: (_agent: string, err: unknown) => void skips.push(err) })
    const t = await TestApp.start(h.app)
    const err = await t
      .agent(waiter)
      .put({ userId: 'x', hits: 30, timestamp: 0 })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CONFIGURATION' })
    expect(String(err)).toMatch(/sendAndWait .* not available under exactly_once/)
    // onError does not apply to a configuration error: it is not skipped, the worker stops.
    expect(skips).toEqual([])
    expect(h.app.experimental_testing.state).toBe('crashed')
  })
})

describe('exactly_once, outputs of events acked out of order', () => {
  it('commits a dead letter with the offset that covers it: a record dead-lettered at decode while an earlier one waits in the queue is written once across a crash', async () => {
    const app = new App({
      id: 'eos-dlq-order',
      logger: 'silent',
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 60_000,
    })
    const input = app.topic<string, { n: number }>('input', { partitions: 1 })
    let unblock!: () => void
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve
    })
    const seen: number[] = []
    const agent = app.agent(input, async (stream) => {
      for await (const v of stream) {
        seen.push(v.n)
        if (v.n === 0 && seen.length === 1) await blocked
      }
    })
    let dlqs = 0
    app.sensors.add({ onDlq: () => void dlqs++ })
    const t = await TestApp.start(app)
    await t.send(input, { key: 'k', value: { n: 0 } })
    await until(() => seen.length === 1)
    // Offset 1 waits in the agent's queue behind offset 0; offset 2 cannot be decoded and is
    // dead-lettered (and acked) at once, ahead of offset 1.
    await t.send(input, { key: 'k', value: { n: 1 } })
    await t.sendRaw('input', { key: 'k', value: '{not json' })
    await until(() => dlqs === 1)
    // The commit waits for offset 0, then holds offset 1 back: it commits offset 0 only.
    const committing = t.commit()
    unblock()
    await committing
    expect(t.committed(input).get(0)).toBe(1)
    await t.crash()
    await t.restart()
    await t.settle()
    await t.commit()
    expect(t.committed(input).get(0)).toBe(3)
    expect(t.deadLetters(agent).map((d) => d.sourceOffset)).toEqual([2])
    await t.stop()
  })
})

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 5))
  }
}
