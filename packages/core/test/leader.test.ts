import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

let running: TestApp[] = []
afterEach(async () => {
  for (const t of running) if (t.app.running) await t.stop()
  running = []
})

/** An app with no agents and an onLeader timer: it reads no stream, yet one worker must lead. */
function agentless(runs: string[], name: string) {
  const app = new App({ id: 'agentless', logger: 'silent' })
  app.timer(1_000, () => void runs.push(name), { onLeader: true })
  return app
}

describe('one leader, always', () => {
  it('three workers of an app with no agents run an onLeader timer once per tick between them; a new leader takes over', async () => {
    const runs: string[] = []
    const first = await TestApp.start(agentless(runs, 'w0'))
    running = [first]
    for (const name of ['w1', 'w2'])
      running.push(await TestApp.start(agentless(runs, name), { broker: first.broker, clock: first.clock }))
    for (let i = 0; i < 5; i++) await first.advance(1_000)
    expect(runs).toHaveLength(5)
    const leader = runs[0]!
    expect(new Set(runs)).toEqual(new Set([leader]))
    // The leader dies: another worker leads from the next tick on.
    await running[Number(leader.slice(1))]!.crash()
    runs.length = 0
    for (let i = 0; i < 5; i++) await first.advance(1_000)
    for (const t of running) if (t.app.running) await t.settle()
    expect(runs.length).toBeGreaterThanOrEqual(4)
    expect(runs.length).toBeLessThanOrEqual(5)
    expect(new Set(runs).size).toBe(1)
    expect(runs[0]).not.toBe(leader)
  })
})

describe('app.task(fn, { onLeader: true })', () => {
  it('runs once, on the leader; when the leader goes, once more on the new one', async () => {
    const runs: string[] = []
    const make = (name: string) => {
      const app = new App({ id: 'leader-task', logger: 'silent' })
      app.task(() => void runs.push(`leader:${name}`), { onLeader: true })
      app.task(() => void runs.push(`every:${name}`))
      return app
    }
    const first = await TestApp.start(make('w0'))
    running = [first]
    running.push(await TestApp.start(make('w1'), { broker: first.broker, clock: first.clock }))
    for (const t of running) await t.settle()
    const leaders = runs.filter((r) => r.startsWith('leader:'))
    expect(leaders).toEqual(['leader:w0'])
    expect(runs.filter((r) => r.startsWith('every:')).sort()).toEqual(['every:w0', 'every:w1'])
    await first.crash()
    await running[1]!.settle()
    expect(runs.filter((r) => r.startsWith('leader:'))).toEqual(['leader:w0', 'leader:w1'])
  })
})
