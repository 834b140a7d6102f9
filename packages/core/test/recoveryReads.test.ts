import { TestApp } from '@mephisto/testkit'
import { describe, expect, it } from 'vitest'
import type { Store, TableStore } from '../src/index.js'
import { App, memoryStore } from '../src/index.js'

/** A memory store whose recovery writes wait at a gate the test opens. */
function gatedStore(): { store: Store; reached: () => boolean; open: () => void } {
  const base = memoryStore()
  let reached = false
  let open!: () => void
  const gate = new Promise<void>((resolve) => {
    open = resolve
  })
  const store: Store = {
    kind: 'gated',
    async open(spec) {
      const s = await base.open(spec)
      return Object.assign(Object.create(s), {
        write: async (p: number, writes: never, offset: number) => {
          reached = true
          await gate
          return s.write(p, writes, offset)
        },
      }) as TableStore<any>
    },
  }
  return { store, reached: () => reached, open }
}

function counter(id: string, options: { store?: Store; recoveryWaitMs?: number } = {}) {
  const app = new App({ id, logger: 'silent', ...(options.store && { store: options.store }) })
  const input = app.topic<string, number>('input', { partitions: 1 })
  const counts = app.table<string, number>('counts', {
    default: () => 0,
    partitions: 1,
    ...(options.recoveryWaitMs !== undefined && { recoveryWaitMs: options.recoveryWaitMs }),
  })
  app.agent(input, async (stream) => {
    for await (const [k] of stream.items()) counts.set(k, (await counts.get(k)) + 1)
  })
  return { app, input, counts }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('table reads outside an event while the partition recovers', () => {
  it('wait for the recovery and answer the recovered value, not the default', async () => {
    const first = counter('recovering-reads')
    const t1 = await TestApp.start(first.app)
    for (let i = 0; i < 3; i++) await t1.send(first.input, { key: 'u', value: 1 })
    await t1.settle()
    const gated = gatedStore()
    const second = counter('recovering-reads', { store: gated.store })
    const t2 = await TestApp.start(second.app, { broker: t1.broker, clock: t1.clock })
    await t1.stop() // partition 0 moves to the second worker, whose recovery waits at the gate
    await until('the recovery to start', gated.reached)
    let answer: number | undefined
    const read = second.counts.get('u', { partition: 0 }).then((v) => {
      answer = v
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(answer).toBeUndefined()
    gated.open()
    await read
    expect(answer).toBe(3)
    await t2.settle()
    await t2.stop()
  })

  it('throw NotReadyError once recoveryWaitMs has passed', async () => {
    const first = counter('recovering-reads-slow')
    const t1 = await TestApp.start(first.app)
    await t1.send(first.input, { key: 'u', value: 1 })
    await t1.settle()
    const gated = gatedStore()
    const second = counter('recovering-reads-slow', { store: gated.store, recoveryWaitMs: 30 })
    const t2 = await TestApp.start(second.app, { broker: t1.broker, clock: t1.clock })
    await t1.stop()
    await until('the recovery to start', gated.reached)
    await expect(second.counts.get('u', { partition: 0 })).rejects.toMatchObject({
      code: 'NOT_READY',
      message: expect.stringMatching(/partition 0 is still recovering after 30 ms/),
    })
    gated.open()
    await t2.settle()
    expect(await second.counts.get('u', { partition: 0 })).toBe(1)
    await t2.stop()
  })
})
