import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

const PARTITIONS = 12

function worker() {
  const app = new App({ id: 'sticky', logger: 'silent', commitIntervalMs: 100 })
  const input = app.topic<string, number>('input', { partitions: PARTITIONS })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: PARTITIONS })
  app.agent(input, async (stream) => {
    for await (const [k] of stream.items()) counts.set(k, (await counts.get(k)) + 1)
  })
  return { app, input, counts }
}

let running: TestApp[] = []
afterEach(async () => {
  for (const t of running) if (t.app.running) await t.stop()
  running = []
})

/** Which worker (by index) holds each partition number of the input topic. */
function owners(ws: ReturnType<typeof worker>[]): Map<number, number> {
  const out = new Map<number, number>()
  ws.forEach((w, i) => {
    if (!w.app.running) return
    for (const tp of w.app.worker!.assignment()) if (tp.topic === 'input') out.set(tp.partition, i)
  })
  return out
}

function moved(before: Map<number, number>, after: Map<number, number>): number {
  let n = 0
  for (const [p, i] of after) if (before.get(p) !== i) n++
  return n
}

describe('sticky assignment across workers', () => {
  it('scale 3 -> 2 -> 3 moves only the partitions that must move, and counts stay exact', async () => {
    const ws = [worker(), worker(), worker()]
    const t0 = await TestApp.start(ws[0]!.app)
    const t1 = await TestApp.start(ws[1]!.app, { broker: t0.broker, clock: t0.clock })
    const t2 = await TestApp.start(ws[2]!.app, { broker: t0.broker, clock: t0.clock })
    running = [t0, t1, t2]
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) await t0.send(ws[0]!.input, { key: `k${i % 48}`, value: 1 })
      for (const t of running) if (t.app.running) await t.settle()
    }
    await send(480)
    const three = owners(ws)
    expect(three.size).toBe(PARTITIONS)
    // Worker 2 leaves: only its 4 partitions move.
    await t2.stop()
    await send(480)
    const two = owners(ws)
    expect(two.size).toBe(PARTITIONS)
    expect(moved(three, two)).toBe(4)
    // A new worker joins: it takes 4, nothing else moves.
    const w3 = worker()
    ws.push(w3)
    const t3 = await TestApp.start(w3.app, { broker: t0.broker, clock: t0.clock })
    running.push(t3)
    await send(480)
    const again = owners(ws)
    expect(moved(two, again)).toBe(4)
    expect([...again.values()].filter((i) => i === 3)).toHaveLength(4)
    for (let k = 0; k < 48; k++) {
      const key = `k${k}`
      const owner = ws.find(
        (w) =>
          w.app.running &&
          w.app
            .worker!.assignment()
            .some((tp) => tp.topic === 'input' && tp.partition === w.counts.hashPartition(key)),
      )!
      expect(await owner.counts.get(key), key).toBe(30)
    }
  })
})
