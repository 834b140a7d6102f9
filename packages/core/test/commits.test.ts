import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { App, StreamEvent } from '../src/index.js'
import { quietApp } from './helpers.js'

const running: TestApp[] = []
async function start(app: App): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

/** Holds the event whose value is 'hold' unacked, acks everything else at once. */
function holdingApp(options: { commitIntervalMs?: number } = {}) {
  // A held event is never finished, so stopping would wait the whole drain timeout for it.
  const app = quietApp('holding', { drainTimeoutMs: 50, ...options })
  const jobs = app.topic<string, string>('jobs', { partitions: 1 })
  const held: StreamEvent<string, string>[] = []
  const seen: string[] = []
  app.agent(
    jobs,
    async (stream) => {
      for await (const e of stream.noAck().events()) {
        seen.push(e.value)
        if (e.value === 'hold') held.push(e)
        else e.ack()
      }
    },
    { name: 'worker' },
  )
  return { app, jobs, held, seen }
}

describe('commit semantics', () => {
  it('never commits past an unacked event, however many later ones are acked', async () => {
    const { app, jobs, held } = holdingApp({ commitIntervalMs: 1000 })
    const t = await start(app)
    for (const v of ['a', 'b', 'hold', 'c', 'd']) await t.send(jobs, { value: v })
    await t.settle()
    await t.advance(1000)
    expect(t.committed(jobs).get(0)).toBe(2)
    for (let i = 0; i < 50; i++) await t.send(jobs, { value: `later-${i}` })
    await t.settle()
    for (let i = 0; i < 5; i++) {
      await t.advance(1000)
      expect(t.committed(jobs).get(0)).toBe(2)
    }
    expect(held.map((e) => e.offset)).toEqual([2])
    held[0]!.ack()
    await t.advance(1000)
    expect(t.committed(jobs).get(0)).toBe(55)
  })

  it('redelivers the held event (and what followed it) after a crash', async () => {
    const { app, jobs, seen } = holdingApp({ commitIntervalMs: 1000 })
    const t = await start(app)
    for (const v of ['a', 'hold', 'b', 'c']) await t.send(jobs, { value: v })
    await t.settle()
    await t.advance(1000)
    expect(t.committed(jobs).get(0)).toBe(1)
    await t.crash()
    seen.length = 0
    await t.restart()
    expect(seen).toEqual(['hold', 'b', 'c'])
  })

  it('commits on the interval of the app clock, not before', async () => {
    const app = quietApp('interval', { commitIntervalMs: 5000 })
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    app.agent(jobs, async (stream) => {
      for await (const _ of stream) {
        // ack on next
      }
    })
    const t = await start(app)
    await t.send(jobs, { value: 'x' })
    await t.settle()
    expect(t.committed(jobs).get(0)).toBe(-1)
    await t.advance(4999)
    expect(t.committed(jobs).get(0)).toBe(-1)
    await t.advance(1)
    expect(t.committed(jobs).get(0)).toBe(1)
    await t.send(jobs, { value: 'y' })
    await t.settle()
    await t.advance(5000)
    expect(t.committed(jobs).get(0)).toBe(2)
  })

  it('the default interval is 2800 ms', async () => {
    const app = quietApp('default-interval')
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    app.agent(jobs, async (stream) => {
      for await (const _ of stream) {
        // ack on next
      }
    })
    const t = await start(app)
    await t.send(jobs, { value: 'x' })
    await t.settle()
    await t.advance(2799)
    expect(t.committed(jobs).get(0)).toBe(-1)
    await t.advance(1)
    expect(t.committed(jobs).get(0)).toBe(1)
  })

  it('commits after commitEvery acks without waiting for the interval', async () => {
    const app = quietApp('every', { commitEvery: 10, commitIntervalMs: 1_000_000 })
    const jobs = app.topic<string, number>('jobs', { partitions: 1 })
    app.agent(jobs, async (stream) => {
      for await (const _ of stream) {
        // ack on next
      }
    })
    const t = await start(app)
    for (let i = 0; i < 25; i++) await t.send(jobs, { value: i })
    await t.settle()
    expect(t.committed(jobs).get(0)).toBe(20)
  })

  it('a graceful stop commits everything processed', async () => {
    const app = quietApp('stop-commits', { commitIntervalMs: 1_000_000 })
    const jobs = app.topic<string, number>('jobs', { partitions: 2 })
    app.agent(jobs, async (stream) => {
      for await (const _ of stream) {
        // ack on next
      }
    })
    const t = await start(app)
    for (let i = 0; i < 10; i++) await t.send(jobs, { value: i, partition: i % 2 })
    await t.settle()
    await t.stop()
    expect(t.committed(jobs)).toEqual(
      new Map([
        [0, 5],
        [1, 5],
      ]),
    )
  })

  it('outputs are on the broker before the input offset that produced them is committed', async () => {
    const app = quietApp('durable', { commitIntervalMs: 1000 })
    const input = app.topic<string, number>('input', { partitions: 1 })
    const output = app.topic<string, number>('output', { partitions: 1 })
    app.agent(input, async (stream) => {
      for await (const n of stream) await output.send({ value: n * 10 })
    })
    const t = await start(app)
    for (let i = 0; i < 3; i++) await t.send(input, { value: i })
    await t.settle()
    await t.advance(1000)
    expect(t.committed(input).get(0)).toBe(3)
    expect(t.sent(output).map((m) => m.value)).toEqual([0, 10, 20])
  })
})
