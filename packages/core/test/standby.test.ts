import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

function counter(standbyReplicas: number) {
  const app = new App({ id: 'standby', logger: 'silent', commitIntervalMs: 100 })
  const input = app.topic<string, number>('input', { partitions: 2 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 2, standbyReplicas })
  app.agent(input, async (stream) => {
    for await (const [k] of stream.items()) counts.set(k, (await counts.get(k)) + 1)
  })
  const replayed: number[] = []
  app.sensors.add({
    onRecoveryProgress: (_t, _p, done, total) => {
      if (done === total) replayed.push(total)
    },
  })
  return { app, input, counts, replayed }
}

let running: TestApp[] = []
afterEach(async () => {
  for (const t of running) if (t.app.running) await t.stop()
  running = []
})

describe('standby replicas', () => {
  it('keep a copy of the partitions another worker owns, so a failover replays only the lag', async () => {
    const a = counter(1)
    const b = counter(1)
    const ta = await TestApp.start(a.app)
    const tb = await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock })
    running = [ta, tb]
    // Keys landing in both partitions: each worker owns one.
    const keys = ['a', 'b', 'c', 'd', 'e', 'f']
    for (let i = 0; i < 300; i++) {
      const k = keys[i % keys.length]!
      await ta.send(a.input, { key: k, value: 1 })
    }
    await ta.settle()
    // Commits write the changelogs; the standby timer copies them to the other worker.
    await ta.advance(1_000)
    await ta.advance(1_000)
    // The worker about to die owns keys of its own (else the failover would prove nothing).
    let ownedByA = 0
    for await (const _ of a.counts.entries()) ownedByA++
    expect(ownedByA).toBeGreaterThan(0)
    const before = [...b.replayed]
    await ta.crash()
    await tb.settle()
    // b took over a's partition: it replayed nothing (its standby copy was current).
    const replayedOnFailover = b.replayed.slice(before.length).reduce((x, y) => x + y, 0)
    expect(replayedOnFailover).toBe(0)
    for (const k of keys) expect(await b.counts.get(k)).toBe(50)
  })

  it('without standby replicas the new owner replays the whole changelog of the partition', async () => {
    const a = counter(0)
    const b = counter(0)
    const ta = await TestApp.start(a.app)
    const tb = await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock })
    running = [ta, tb]
    for (let i = 0; i < 60; i++)
      await ta.send(a.input, { key: ['a', 'b', 'c', 'd', 'e', 'f'][i % 6]!, value: 1 })
    await ta.settle()
    await ta.advance(1_000)
    const before = b.replayed.length
    await ta.crash()
    await tb.settle()
    expect(b.replayed.slice(before).reduce((x, y) => x + y, 0)).toBeGreaterThan(0)
  })
})

describe('standby placement', () => {
  it('places standbyReplicas copies of each partition on that many other workers, not on all', async () => {
    const workers = [0, 1, 2].map(() => {
      const app = new App({ id: 'placed', logger: 'silent', commitIntervalMs: 100 })
      const input = app.topic<string, number>('input', { partitions: 6 })
      const counts = app.table<string, number>('counts', {
        default: () => 0,
        partitions: 6,
        standbyReplicas: 1,
      })
      app.agent(input, async (stream) => {
        for await (const [k] of stream.items()) counts.set(k, (await counts.get(k)) + 1)
      })
      return { app, input, counts }
    })
    const first = await TestApp.start(workers[0]!.app)
    running = [first]
    for (const w of workers.slice(1))
      running.push(await TestApp.start(w.app, { broker: first.broker, clock: first.clock }))
    for (let i = 0; i < 600; i++) await first.send(workers[0]!.input, { key: `k${i % 60}`, value: 1 })
    for (const t of running) await t.settle()
    await first.advance(1_000)
    await first.advance(1_000)
    // Each partition has data on its owner and on exactly one other worker.
    const holders = new Map<number, number>()
    for (const w of workers) {
      const state = w.app.tableState(w.counts)
      for (let p = 0; p < 6; p++) {
        for await (const _ of state.entries(p)) {
          holders.set(p, (holders.get(p) ?? 0) + 1)
          break
        }
      }
    }
    expect([...holders.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5])
    expect([...holders.values()]).toEqual([2, 2, 2, 2, 2, 2])
  })
})
