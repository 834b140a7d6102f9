import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { AgentSnapshot } from '../src/index.js'
import { MemoryTransport } from '../src/index.js'
import { quietApp } from './helpers.js'

const running: TestApp[] = []
const releases: (() => void)[] = []
afterEach(async () => {
  for (const release of releases.splice(0)) release()
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** An app whose agent `hanger` hangs on 'hang' until `release()`, beside an agent that does nothing. */
function hangingApp(id: string) {
  const app = quietApp(id, { web: { port: 0 } })
  const input = app.topic<string, string>('input', { partitions: 1 })
  const idle = app.topic<string, string>('idle', { partitions: 1 })
  let release!: () => void
  const hung = new Promise<void>((resolve) => {
    release = resolve
  })
  releases.push(() => release())
  app.agent(
    input,
    async (stream) => {
      for await (const v of stream) if (v === 'hang') await hung
    },
    { name: 'hanger' },
  )
  app.agent(
    idle,
    async (stream) => {
      for await (const _ of stream) {
        // Nothing to do: its figures stay at zero.
      }
    },
    { name: 'idler' },
  )
  return { app, input, release: () => release() }
}

describe("the monitor's agents: each agent's oldest event in progress, read from the running worker", () => {
  it('grows while an agent hangs on one event, with the events queued behind it, in snapshot() and /stats', async () => {
    const h = hangingApp('agents-hang')
    expect(h.app.monitor.snapshot().agents).toEqual({})
    const t = await TestApp.start(h.app)
    running.push(t)
    const agents = (): Record<string, AgentSnapshot> => h.app.monitor.snapshot().agents
    expect(agents()).toEqual({
      hanger: { oldestEventAgeMs: 0, queued: 0 },
      idler: { oldestEventAgeMs: 0, queued: 0 },
    })

    await t.send(h.input, { key: 'k', value: 'hang' })
    await t.send(h.input, { key: 'k', value: 'next' })
    // The watchdog ages an event from the tick that first saw it in an actor's hands (about 1 s).
    await until('the hung event to be aged', () => (agents().hanger?.oldestEventAgeMs ?? 0) > 0)
    const first = agents().hanger!.oldestEventAgeMs
    await new Promise((r) => setTimeout(r, 200))
    const later = agents()
    expect(later.hanger!.oldestEventAgeMs).toBeGreaterThanOrEqual(first + 150)
    expect(later.hanger!.queued).toBe(1)
    expect(later.idler).toEqual({ oldestEventAgeMs: 0, queued: 0 })

    const stats = (await (await fetch(`${h.app.webUrl}/stats`)).json()) as {
      agents: Record<string, AgentSnapshot>
    }
    expect(stats.agents.hanger!.oldestEventAgeMs).toBeGreaterThanOrEqual(later.hanger!.oldestEventAgeMs)
    expect(stats.agents.hanger!.queued).toBe(1)

    // Not a counter: a reset leaves it.
    h.app.monitor.reset()
    expect(agents().hanger!.oldestEventAgeMs).toBeGreaterThanOrEqual(later.hanger!.oldestEventAgeMs)

    h.release()
    await until('the agent to finish', () => agents().hanger?.oldestEventAgeMs === 0)
    expect(agents().hanger!.queued).toBe(0)
    await t.stop()
    expect(agents()).toEqual({})
  })

  it("reads the current worker's agents: nothing from a crashed one, the new one's after a restart", async () => {
    const h = hangingApp('agents-restart')
    const t = await TestApp.start(h.app)
    running.push(t)
    const agents = (): Record<string, AgentSnapshot> => h.app.monitor.snapshot().agents
    await t.send(h.input, { key: 'k', value: 'hang' })
    await until('the hung event to be aged', () => (agents().hanger?.oldestEventAgeMs ?? 0) > 0)
    await t.crash()
    expect(agents()).toEqual({})
    // A new worker, as an in-process restart starts one, on the same broker (not t.restart(): it
    // settles, which a hung agent never does). It reads the uncommitted 'hang' again and hangs on it.
    await h.app.start({ transport: new MemoryTransport(t.broker) })
    expect(Object.keys(agents()).sort()).toEqual(['hanger', 'idler'])
    await until('the new worker to age the hung event', () => (agents().hanger?.oldestEventAgeMs ?? 0) > 0)
    h.release()
    await until('the agent to finish', () => agents().hanger?.oldestEventAgeMs === 0)
  })
})
