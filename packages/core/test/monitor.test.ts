import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { quietApp } from './helpers.js'

const running: TestApp[] = []

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5))
  if (!ok()) throw new Error(`timed out waiting for ${what}`)
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

describe('the app monitor', () => {
  it('counts a message active from its arrival until every agent acked it (or it was dead-lettered)', async () => {
    const app = quietApp('active')
    const topic = app.topic<string, { n: number }>('jobs')
    let release!: () => void
    let gate = new Promise<void>((r) => {
      release = r
    })
    const inHand: number[] = []
    app.agent(
      topic,
      async (stream) => {
        for await (const job of stream) {
          inHand.push(job.n)
          await gate
        }
      },
      { name: 'slow' },
    )
    app.agent(
      topic,
      async (stream) => {
        for await (const _ of stream) {
          // A second agent on the topic: a message is done when both acked it.
        }
      },
      { name: 'fast' },
    )
    const t = await TestApp.start(app)
    running.push(t)
    await t.send(topic, { value: { n: 1 } })
    await t.sendRaw('jobs', { value: Buffer.from('{not json') })
    await t.send(topic, { value: { n: 2 } })
    await until('the first job in hand', () => inHand.length === 1)
    const busy = app.monitor.snapshot().messages
    expect(busy.receivedTotal).toBe(3)
    // n=1 in the first agent's hands, n=2 queued for it; the malformed one is already dead-lettered.
    expect(busy.active).toBe(2)
    release()
    gate = Promise.resolve()
    await t.settle()
    const done = app.monitor.snapshot().messages
    expect(inHand).toEqual([1, 2])
    expect(done.active).toBe(0)
    expect(done.receivedTotal).toBe(3)
  })
})

describe('AppOptions.monitor', () => {
  it('configures app.monitor', () => {
    let t = 0
    const app = quietApp('monitor-options', { monitor: { now: () => t, eventTimingsPerSec: 1 } })
    const states: unknown[] = []
    // With a clock at 0 the rate is unknown: every event is timed until 100 ms have passed.
    for (let i = 0; i < 3; i++)
      states.push(app.monitor.onStreamEventIn({ stream: 's', topic: 't', partition: 0, offset: i }))
    expect(states).toEqual([0, 0, 0])
    t = 100
    app.monitor.onStreamEventIn({ stream: 's', topic: 't', partition: 0, offset: 3 })
    // 4 events over 100 ms is 40/s, against 1 timed a second: the next 40 are not timed.
    const next = app.monitor.onStreamEventIn({ stream: 's', topic: 't', partition: 0, offset: 4 })
    expect(next).toBeUndefined()
  })
})
