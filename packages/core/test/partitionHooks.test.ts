import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

let running: TestApp[] = []
afterEach(async () => {
  for (const t of running) if (t.app.running) await t.stop()
  running = []
})

function hooked(log: string[], name: string, fail = false) {
  const app = new App({ id: 'hooks', logger: 'silent', commitIntervalMs: 100 })
  const input = app.topic<string, string>('input', { partitions: 2 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 2 })
  app.onPartitionsAssigned(async (tps) => {
    // Awaited: nothing of these partitions is processed before it resolves.
    await new Promise((r) => setTimeout(r, 20))
    log.push(`${name} assigned ${tps.map((tp) => `${tp.topic}[${tp.partition}]`).join(',')}`)
    if (fail) throw new Error('hook failed')
  })
  app.onPartitionsRevoked((tps) => {
    log.push(`${name} revoked ${tps.map((tp) => tp.partition).join(',')}`)
  })
  app.agent(input, async (stream) => {
    for await (const v of stream) {
      log.push(`${name} event ${v}`)
      counts.set(v, (await counts.get(v)) + 1)
    }
  })
  return { app, input }
}

describe('partition lifecycle hooks', () => {
  it('awaits onPartitionsAssigned before processing and calls onPartitionsRevoked when partitions leave', async () => {
    const log: string[] = []
    const a = hooked(log, 'a')
    const ta = await TestApp.start(a.app)
    running = [ta]
    await ta.send(a.input, { key: 'k', value: 'x', partition: 0 })
    await ta.settle()
    expect(log).toEqual(['a assigned input[0],input[1]', 'a event x'])
    const b = hooked(log, 'b')
    running.push(await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock }))
    for (const t of running) await t.settle()
    // b takes one partition: a lets it go first, then b gets it.
    const revoked = log.findIndex((l) => l.startsWith('a revoked'))
    const assigned = log.findIndex((l) => l.startsWith('b assigned'))
    expect(revoked).toBeGreaterThan(1)
    expect(assigned).toBeGreaterThan(revoked)
    await ta.stop()
    expect(log.at(-1)).toMatch(/^a revoked/)
  })

  it('a hook that throws is logged and the partitions are processed all the same', async () => {
    const log: string[] = []
    const a = hooked(log, 'a', true)
    const ta = await TestApp.start(a.app)
    running = [ta]
    await ta.send(a.input, { key: 'k', value: 'x', partition: 1 })
    await ta.settle()
    expect(log).toEqual(['a assigned input[0],input[1]', 'a event x'])
    expect(a.app.running).toBe(true)
  })
})

describe('table onRecover', () => {
  it('is awaited with the partitions a worker recovered, before their events, and again for those it takes over', async () => {
    const log: string[] = []
    const make = (name: string) => {
      const app = new App({ id: 'on-recover', logger: 'silent', commitIntervalMs: 100 })
      const input = app.topic<string, string>('input', { partitions: 2 })
      const counts = app.table<string, number>('counts', {
        default: () => 0,
        partitions: 2,
        onRecover: async (partitions) => {
          await new Promise((r) => setTimeout(r, 10))
          log.push(`${name} recovered ${partitions.join(',')}`)
        },
      })
      app.agent(input, async (stream) => {
        for await (const v of stream) {
          log.push(`${name} event ${v}`)
          counts.set(v, (await counts.get(v)) + 1)
        }
      })
      return { app, input }
    }
    const a = make('a')
    const ta = await TestApp.start(a.app)
    running = [ta]
    await ta.send(a.input, { key: 'k', value: 'x', partition: 1 })
    await ta.settle()
    expect(log).toEqual(['a recovered 0,1', 'a event x'])
    const b = make('b')
    running.push(await TestApp.start(b.app, { broker: ta.broker, clock: ta.clock }))
    for (const t of running) await t.settle()
    expect(log.filter((l) => l.startsWith('b recovered'))).toHaveLength(1)
    await running[1]!.stop()
    await ta.settle()
    // a takes b's partition back: only that one is recovered again.
    expect(log.filter((l) => l.startsWith('a recovered'))).toHaveLength(2)
    expect(log.filter((l) => l.startsWith('a recovered')).at(-1)).toMatch(/^a recovered \d$/)
  })
})
