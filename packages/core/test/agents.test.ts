import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { currentEvent } from '../src/index.js'
import { gate, quietApp } from './helpers.js'

const running: TestApp[] = []
async function start(app: Parameters<typeof TestApp.start>[0]): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

function doubler() {
  const app = quietApp('doubler')
  const numbers = app.topic<string, number>('numbers', { partitions: 1 })
  const doubled = app.topic<string, number>('doubled', { partitions: 1 })
  const received: number[] = []
  const double = app.agent(
    numbers,
    async function* (stream) {
      for await (const n of stream) {
        // Odd numbers yield nothing: a generator need not yield for every value.
        if (n % 2 === 0) yield n * 2
      }
    },
    { name: 'double', sink: [doubled, (v) => void received.push(v)] },
  )
  return { app, numbers, doubled, double, received }
}

describe('ask and cast', () => {
  it('ask resolves with what the agent yielded for the value', async () => {
    const { app, double } = doubler()
    const t = await start(app)
    const answer = double.ask(21 * 2)
    await t.settle()
    await expect(answer).resolves.toBe(84)
  })

  it('ask resolves undefined when the agent yields nothing for the value', async () => {
    const { app, double } = doubler()
    const t = await start(app)
    const answer = double.ask(3)
    await t.settle()
    await expect(answer).resolves.toBeUndefined()
  })

  it('cast sends without waiting for a result', async () => {
    const { app, double, received } = doubler()
    const t = await start(app)
    await double.cast(5)
    await double.cast(6)
    await t.settle()
    expect(received).toEqual([12])
  })

  it('an async-function agent (no yield) answers ask with undefined once it moved on', async () => {
    const app = quietApp('plain')
    const words = app.topic<string, string>('words', { partitions: 1 })
    const seen: string[] = []
    const agent = app.agent(words, async (stream) => {
      for await (const w of stream) seen.push(w)
    })
    const t = await start(app)
    await expect(t.agent(agent).put('hello')).resolves.toBeUndefined()
    expect(seen).toEqual(['hello'])
  })
})

describe('ask timeouts', () => {
  function silentApp() {
    // The held event would keep a graceful stop waiting for the whole drain timeout.
    const app = quietApp('silent', { drainTimeoutMs: 50 })
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    // Never acks and never yields: an ask can only time out.
    const agent = app.agent(
      jobs,
      async (stream) => {
        for await (const _ of stream.noAck().events()) {
          // hold it
        }
      },
      { name: 'silent' },
    )
    return { app, agent }
  }

  it('ask rejects with ASK_TIMEOUT after timeoutMs of the app clock', async () => {
    const { app, agent } = silentApp()
    const t = await start(app)
    const answer = agent.ask('x', { timeoutMs: 5000 }).then(
      () => 'answered',
      (e: unknown) => e,
    )
    await t.advance(4999)
    let settled = false
    void answer.then(() => {
      settled = true
    })
    await t.settle()
    expect(settled).toBe(false)
    await t.advance(1)
    expect(await answer).toMatchObject({
      code: 'ASK_TIMEOUT',
      message: 'agent silent did not answer within 5000 ms',
    })
  })

  it('a pending ask is rejected with NotReadyError when the app stops', async () => {
    const { app, agent } = silentApp()
    const t = await TestApp.start(app)
    const answer = agent.ask('x').catch((e: unknown) => e)
    await t.settle()
    // The held event would keep a graceful stop waiting for the drain timeout: crash instead.
    await t.crash()
    expect(await answer).toMatchObject({ code: 'NOT_READY' })
  })
})

describe('testkit agent context', () => {
  it('put(value) returns what the agent yielded', async () => {
    const { app, double } = doubler()
    const t = await start(app)
    const a = t.agent(double)
    expect(await a.put(10)).toBe(20)
    expect(await a.put(7)).toBeUndefined()
    expect(await a.put(0)).toBe(0)
  })
})

describe('sinks', () => {
  it('topic and function sinks receive every yielded value', async () => {
    const { app, numbers, doubled, received } = doubler()
    const t = await start(app)
    for (const n of [1, 2, 3, 4]) await t.send(numbers, { value: n })
    await t.settle()
    expect(received).toEqual([4, 8])
    expect(t.sent(doubled).map((m) => m.value)).toEqual([4, 8])
  })

  it('an agent sink receives every yielded value', async () => {
    const app = quietApp('agent-sink')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const squares = app.topic<string, number>('squares', { partitions: 1 })
    const got: number[] = []
    const store = app.agent(
      squares,
      async (stream) => {
        for await (const n of stream) got.push(n)
      },
      { name: 'store' },
    )
    app.agent(
      numbers,
      async function* (stream) {
        for await (const n of stream) yield n * n
      },
      { name: 'square', sink: [store] },
    )
    const t = await start(app)
    for (const n of [1, 2, 3]) await t.send(numbers, { value: n })
    await t.settle()
    expect(got).toEqual([1, 4, 9])
  })

  it('a channel sink feeds the agent reading the channel', async () => {
    const app = quietApp('channel-sink')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const collected: number[] = []
    const collector = app.channel<number>('collected')
    app.agent(
      collector,
      async (stream) => {
        for await (const n of stream) collected.push(n)
      },
      { name: 'collector' },
    )
    app.agent(
      numbers,
      async function* (stream) {
        for await (const n of stream) yield n + 100
      },
      { name: 'plus', sink: [collector] },
    )
    const t = await start(app)
    await t.send(numbers, { value: 4 })
    await t.send(numbers, { value: 5 })
    await t.settle()
    expect(collected).toEqual([104, 105])
  })
})

describe('agents', () => {
  it('two agents on one topic each see every event, and the offset is committed once both acked', async () => {
    const app = quietApp('fan-out')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const a: number[] = []
    const b: number[] = []
    const hold = gate()
    app.agent(
      numbers,
      async (stream) => {
        for await (const n of stream) a.push(n)
      },
      { name: 'a' },
    )
    app.agent(
      numbers,
      async (stream) => {
        for await (const n of stream) {
          if (n === 1) await hold.promise
          b.push(n)
        }
      },
      { name: 'b' },
    )
    const t = await start(app)
    for (const n of [0, 1, 2]) await t.send(numbers, { value: n })
    // b is stuck on 1; settle would wait for it, so let the event loop run instead.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r))
    await t.commit()
    expect(a).toEqual([0, 1, 2])
    expect(b).toEqual([0])
    expect(t.committed(numbers).get(0)).toBe(1)
    hold.open()
    await t.settle()
    await t.commit()
    expect(b).toEqual([0, 1, 2])
    expect(t.committed(numbers).get(0)).toBe(3)
  })

  it('concurrent actors keep their own current event across awaits (table writes shard right)', async () => {
    const app = quietApp('concurrent', { topicPartitions: 4 })
    const jobs = app.topic<string, number>('jobs', { partitions: 4 })
    const seenBy = app.table<string, number>('seen-by', { partitions: 4 })
    let inProgress = 0
    const allIn = gate()
    const mismatches: string[] = []
    app.agent(
      jobs,
      async (stream) => {
        for await (const n of stream.events()) {
          const before = currentEvent()
          if (++inProgress === 4) allIn.open()
          // Every actor waits here until all four are in the middle of an event.
          await allIn.promise
          await new Promise((r) => setImmediate(r))
          if (currentEvent() !== before || before?.offset !== n.offset || before.partition !== n.partition) {
            mismatches.push(`job ${n.value}`)
          }
          seenBy.set(n.key, n.partition)
        }
      },
      { name: 'work', concurrency: 4 },
    )
    const t = await start(app)
    // One job per partition (partition given explicitly), keys chosen to hash elsewhere.
    for (let p = 0; p < 4; p++) await t.send(jobs, { key: `job-${p}`, value: p, partition: p })
    await t.settle()
    expect(mismatches).toEqual([])
    for (let p = 0; p < 4; p++) expect(await seenBy.get(`job-${p}`, { partition: p })).toBe(p)
  })
})

describe('agent mistakes stop the worker loudly', () => {
  it('an agent body that breaks out of its stream while the worker runs crashes it, naming the fix', async () => {
    const app = quietApp('breaks')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const seen: number[] = []
    app.agent(numbers, async (stream) => {
      for await (const n of stream) {
        seen.push(n)
        if (n === 2) break
      }
    })
    const t = await start(app)
    for (const n of [1, 2, 3]) await t.send(numbers, { key: 'k', value: n })
    await expect(t.settle()).rejects.toMatchObject({
      code: 'AGENT_FAILED',
      message: expect.stringMatching(/returned while the worker runs.*`continue`, not `break`/),
    })
    expect(seen).toEqual([1, 2])
    expect(app.experimental_testing.state).toBe('crashed')
  })

  it('an onError function that returns an unknown action is a configuration error, not a skip', async () => {
    const app = quietApp('typo-policy')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const skipped: unknown[] = []
    app.sensors.add({ onSkip: (_agent: string, err: unknown) => void skipped.push(err) })
    app.agent(
      numbers,
      async (stream) => {
        for await (const _ of stream) throw new Error('bad event')
      },
      { retries: 0, onError: () => 'dql' as never },
    )
    const t = await start(app)
    await t.send(numbers, { key: 'k', value: 1 })
    await expect(t.settle()).rejects.toMatchObject({
      code: 'CONFIGURATION',
      message: expect.stringMatching(/onError returned "dql"; return 'dlq', 'skip', 'crash' or nothing/),
    })
    expect(skipped).toEqual([])
  })
})
