import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

const running: TestApp[] = []
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** An app whose agent hangs on 'hang' until `release()`, counting every other value. */
function hangingApp(
  id: string,
  agentOptions: { eventTimeoutMs?: number } = {},
  web?: { stalledAfterMs: number },
) {
  const app = new App({ id, logger: 'silent', ...(web && { web: { port: 0, ...web } }) })
  const input = app.topic<string, string>('input', { partitions: 1 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 1 })
  let release!: () => void
  const hung = new Promise<void>((resolve) => {
    release = resolve
  })
  const lateWrites: unknown[] = []
  const agent = app.agent(
    input,
    async (stream) => {
      for await (const v of stream) {
        if (v === 'hang') {
          await hung
          // Resumed long after its event was settled: these must be refused.
          try {
            counts.set('late', 1)
          } catch (err) {
            lateWrites.push(err)
          }
          continue
        }
        counts.set(v, (await counts.get(v)) + 1)
      }
    },
    { retries: 0, ...agentOptions },
  )
  return { app, input, counts, agent, release: () => release(), lateWrites }
}

describe('an event that never finishes', () => {
  it('fails with EVENT_TIMEOUT under onError once eventTimeoutMs passes; a new actor goes on, commits move', async () => {
    const h = hangingApp('hung-timeout', { eventTimeoutMs: 100 })
    const t = await TestApp.start(h.app)
    running.push(t)
    for (const v of ['a', 'hang', 'b', 'a']) await t.send(h.input, { key: 'k', value: v })
    await until('the later events', async () => (await h.counts.get('a', { partition: 0 })) === 2)
    expect(await h.counts.get('b', { partition: 0 })).toBe(1)
    const [dead] = t.deadLetters(h.agent)
    expect(dead).toMatchObject({ code: 'EVENT_TIMEOUT', value: '"hang"', sourceOffset: 1 })
    await t.settle()
    await t.commit()
    expect(t.committed(h.input).get(0)).toBe(4)
    // The stuck actor resumes: its table write is refused, and the worker is unaffected.
    h.release()
    await until('the late write to be refused', () => h.lateWrites.length === 1)
    expect(h.lateWrites[0]).toMatchObject({ code: 'EVENT_TIMEOUT' })
    expect(await h.counts.get('late', { partition: 0 })).toBe(0)
    expect(h.app.running).toBe(true)
  })

  it('shows the age of the oldest event in progress on /agents, and /health says degraded past stalledAfterMs', async () => {
    const h = hangingApp('hung-health', {}, { stalledAfterMs: 50 })
    const t = await TestApp.start(h.app)
    running.push(t)
    const health = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${h.app.webUrl}/health`)
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }
    expect((await health()).status).toBe(200)
    await t.send(h.input, { key: 'k', value: 'hang' })
    await until('/health to say degraded', async () => (await health()).status === 503, 5000)
    const { body } = await health()
    expect(body).toMatchObject({ status: 'degraded', ready: true, stalled: [{ agent: h.agent.name }] })
    const agents = (await (await fetch(`${h.app.webUrl}/agents`)).json()) as { oldestEventAgeMs: number }[]
    expect(agents[0]!.oldestEventAgeMs).toBeGreaterThan(50)
    h.release()
    await until('/health to recover', async () => (await health()).status === 200, 5000)
  })
})

describe('an event that never finishes, under exactly-once', () => {
  it('holds the transaction of its own partition only: the other partitions commit their offsets and outputs', async () => {
    const app = new App({ id: 'hung-eos', logger: 'silent', processingGuarantee: 'exactly_once' })
    const input = app.topic<string, string>('input', { partitions: 2 })
    const output = app.topic<string, string>('output', { partitions: 2 })
    let release!: () => void
    const hung = new Promise<void>((resolve) => {
      release = resolve
    })
    const started: string[] = []
    app.agent(
      input,
      async (stream) => {
        for await (const event of stream.events()) {
          started.push(event.value)
          await output.send({ key: event.key as string, value: event.value, partition: event.partition })
          if (event.value === 'hang') await hung
        }
      },
      { concurrency: 2 },
    )
    const t = await TestApp.start(app)
    running.push(t)
    await t.send(input, { key: 'k0', value: 'hang', partition: 0 })
    await t.send(input, { key: 'k1', value: 'b', partition: 1 })
    await t.send(input, { key: 'k1', value: 'c', partition: 1 })
    await until('every event to be started', () => started.length === 3)
    await t.commit()
    expect(t.committed(input).get(1)).toBe(2)
    expect(t.committed(input).get(0)).toBe(-1)
    // Read committed: the outputs of partition 1's events are visible, the stuck one's are not.
    expect(
      t
        .sent(output)
        .map((m) => m.value)
        .sort(),
    ).toEqual(['b', 'c'])
    release()
    await t.settle()
    await t.commit()
    expect(t.committed(input).get(0)).toBe(1)
    expect(
      t
        .sent(output)
        .map((m) => m.value)
        .sort(),
    ).toEqual(['b', 'c', 'hang'])
  }, 20_000)

  it('bounds the outputs buffered for the stuck transaction: its partition stops fetching, the others go on', async () => {
    const commitEvery = 50
    const app = new App({
      id: 'hung-eos-bound',
      logger: 'silent',
      processingGuarantee: 'exactly_once',
      commitEvery,
      maxBufferedEvents: 20,
    })
    const input = app.topic<string, string>('input', { partitions: 2 })
    const output = app.topic<string, string>('output', { partitions: 2 })
    let release!: () => void
    const hung = new Promise<void>((resolve) => {
      release = resolve
    })
    const done = [0, 0]
    app.agent(
      input,
      async (stream) => {
        for await (const event of stream.events()) {
          await output.send({ key: event.key as string, value: event.value, partition: event.partition })
          if (event.value === 'hang') await hung
          done[event.partition]!++
        }
      },
      { concurrency: 2 },
    )
    const t = await TestApp.start(app)
    running.push(t)
    await t.send(input, { key: 'k0', value: 'hang', partition: 0 })
    const n = 2_000
    for (let i = 0; i < n; i++) {
      await t.send(input, { key: 'k0', value: `a${i}`, partition: 0 })
      await t.send(input, { key: 'k1', value: `b${i}`, partition: 1 })
    }
    await until('partition 1 to be done', () => done[1] === n, 40_000)
    await t.commit()
    expect(t.committed(input).get(1)).toBe(n)
    // Partition 0 paused at twice commitEvery buffered outputs; what was already fetched and
    // queued finishes (a memory batch, the agent's queue), nothing past that.
    expect(done[0]).toBeGreaterThanOrEqual(2 * commitEvery - 1)
    expect(done[0]).toBeLessThan(600)
    release()
    await until('partition 0 to be done', () => done[0] === n + 1, 40_000)
    await t.commit()
    expect(t.committed(input).get(0)).toBe(n + 1)
    expect(t.sent(output)).toHaveLength(2 * n + 1)
  }, 90_000)
})
