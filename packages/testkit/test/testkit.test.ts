import { App, MemoryBroker } from '@mephisto/core'
import { afterEach, describe, expect, it } from 'vitest'
import { FakeClock, TestApp } from '../src/index.js'

const running: TestApp[] = []
async function start(app: App, options?: Parameters<typeof TestApp.start>[1]): Promise<TestApp> {
  const t = await TestApp.start(app, options)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0).reverse()) if (t.app.running) await t.stop()
})

function counterApp(options: { commitIntervalMs?: number } = {}) {
  const app = new App({ id: 'counter', logger: 'silent', ...options })
  const words = app.topic<string, string>('words', { partitions: 2 })
  const lengths = app.topic<string, number>('lengths', { partitions: 1 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 2 })
  const count = app.agent(
    words,
    async function* (stream) {
      for await (const w of stream) {
        const n = (await counts.get(w)) + 1
        counts.set(w, n)
        await lengths.send({ key: w, value: w.length })
        yield n
      }
    },
    { name: 'count' },
  )
  return { app, words, lengths, counts, count }
}

describe('TestApp.start', () => {
  it('runs the app on a fresh memory broker with a fake clock', async () => {
    const { app } = counterApp()
    const t = await start(app)
    expect(app.running).toBe(true)
    expect(t.broker).toBeInstanceOf(MemoryBroker)
    expect(t.clock).toBeInstanceOf(FakeClock)
    expect(t.clock.now()).toBe(Date.UTC(2026, 0, 1))
    expect(t.broker.topicNames()).toEqual(
      expect.arrayContaining(['words', 'lengths', 'counter-counts-changelog', 'counter-words-dlq']),
    )
  })

  it('gives each test its own broker', async () => {
    const a = counterApp()
    const t1 = await start(a.app)
    await t1.send(a.words, { key: 'x', value: 'x' })
    await t1.settle()
    await t1.stop()
    const b = counterApp()
    const t2 = await start(b.app)
    expect(t2.broker).not.toBe(t1.broker)
    expect(t2.records('words')).toEqual([])
  })

  it('starts the clock where asked', async () => {
    const { app } = counterApp()
    const t = await start(app, { now: 1_000_000 })
    expect(t.clock.now()).toBe(1_000_000)
  })
})

describe('settle', () => {
  it('returns once every record, including the ones agents sent, is processed', async () => {
    const { app, words, lengths, counts } = counterApp()
    const t = await start(app)
    for (const w of ['a', 'bb', 'a', 'ccc']) await t.send(words, { key: w, value: w })
    await t.settle()
    expect(await t.table(counts).get('a')).toBe(2)
    expect(t.sent(lengths).map((m) => [m.key, m.value])).toEqual([
      ['a', 1],
      ['bb', 2],
      ['a', 1],
      ['ccc', 3],
    ])
  })

  it('fails with a clear message when an agent never finishes', async () => {
    const app = new App({ id: 'stuck', logger: 'silent', drainTimeoutMs: 10 })
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    app.agent(jobs, async (stream) => {
      for await (const _ of stream) await new Promise(() => {})
    })
    const t = await start(app, { settleTimeoutMs: 100 })
    await t.send(jobs, { value: 'x' })
    await expect(t.settle()).rejects.toThrow(/did not become idle within 100 ms/)
  })

  it('rejects with the error that crashed the worker', async () => {
    const app = new App({ id: 'crashes', logger: 'silent' })
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    app.agent(
      jobs,
      async (stream) => {
        for await (const _ of stream) throw new Error('boom')
      },
      { onError: 'crash' },
    )
    const t = await start(app)
    await t.send(jobs, { value: 'x' })
    await expect(t.settle()).rejects.toMatchObject({
      code: 'AGENT_FAILED',
      message: expect.stringContaining('boom'),
    })
  })
})

describe('advance', () => {
  it('moves the fake clock and fires timers in due order', async () => {
    const app = new App({ id: 'clocked', logger: 'silent' })
    const fired: [string, number][] = []
    let t!: TestApp
    app.timer(300, () => void fired.push(['slow', t.clock.now() - 1_000]))
    app.timer(200, () => void fired.push(['fast', t.clock.now() - 1_000]))
    t = await start(app, { now: 1_000 })
    await t.advance(650)
    expect(fired).toEqual([
      ['fast', 200],
      ['slow', 300],
      ['fast', 400],
      ['slow', 600],
      ['fast', 600],
    ])
    expect(t.clock.now()).toBe(1_650)
  })

  it('runs commits that fall due', async () => {
    const { app, words } = counterApp({ commitIntervalMs: 1000 })
    const t = await start(app)
    await t.send(words, { key: 'a', value: 'a', partition: 0 })
    await t.settle()
    expect(t.committed(words).get(0)).toBe(-1)
    await t.advance(1000)
    expect(t.committed(words).get(0)).toBe(1)
  })

  it('refuses to go back in time', async () => {
    const { app } = counterApp()
    const t = await start(app)
    await expect(t.advance(-1)).rejects.toThrow(RangeError)
  })
})

describe('crash and restart', () => {
  it('loses what was not committed, redelivers it and recovers the tables', async () => {
    const { app, words, counts, lengths } = counterApp({ commitIntervalMs: 1000 })
    const t = await start(app)
    await t.send(words, { key: 'a', value: 'a' })
    await t.settle()
    await t.advance(1000)
    await t.send(words, { key: 'a', value: 'a' })
    await t.settle()
    expect(await counts.get('a')).toBe(2)
    await t.crash()
    expect(app.running).toBe(false)
    await t.restart()
    expect(app.running).toBe(true)
    expect(await counts.get('a')).toBe(2)
    // The second event was processed twice: its output was sent twice (at-least-once).
    expect(t.sent(lengths)).toHaveLength(3)
  })

  it('restart after stop resumes where the stop committed', async () => {
    const { app, words, lengths } = counterApp()
    const t = await start(app)
    await t.send(words, { key: 'a', value: 'a' })
    await t.settle()
    await t.stop()
    await t.restart()
    running.push(t)
    expect(t.sent(lengths)).toHaveLength(1)
  })
})

describe('agent().put', () => {
  it('processes one value and returns what the agent yielded for it', async () => {
    const { app, count } = counterApp()
    const t = await start(app)
    const a = t.agent(count)
    expect(await a.put('x', { key: 'x' })).toBe(1)
    expect(await a.put('x', { key: 'x' })).toBe(2)
    expect(await a.put('y', { key: 'y' })).toBe(1)
  })

  it('rethrows when the agent crashed on the value', async () => {
    const app = new App({ id: 'put-crash', logger: 'silent' })
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    const agent = app.agent(
      jobs,
      async function* (stream) {
        for await (const v of stream) {
          if (v === 'bad') throw new Error('bad value')
          yield v.toUpperCase()
        }
      },
      { onError: 'crash' },
    )
    const t = await start(app)
    expect(await t.agent(agent).put('ok')).toBe('OK')
    await expect(t.agent(agent).put('bad')).rejects.toThrow(/bad value/)
  })
})

describe('sendRaw, sent, records and deadLetters', () => {
  it('puts bytes on a topic as they are and shows dead letters decoded', async () => {
    const { app, count, words } = counterApp()
    const t = await start(app)
    const offset = await t.sendRaw('words', { key: 'k', value: Buffer.from([0xff, 0xfe]), partition: 1 })
    expect(offset).toBe(0)
    await t.settle()
    expect(t.records('words')[0]!.value).toEqual(Buffer.from([0xff, 0xfe]))
    expect(t.deadLetters(count)).toMatchObject([
      { code: 'DECODE', sourceTopic: 'words', sourcePartition: 1, sourceOffset: 0 },
    ])
    // sent() decodes with the topic's codecs, so it refuses what they cannot read.
    expect(() => t.sent(words)).toThrow(/cannot decode value/)
    expect(t.records('no-such-topic')).toEqual([])
    await expect(t.sendRaw('no-such-topic', { value: 'x' })).rejects.toThrow(/does not exist/)
  })
})

describe('two workers', () => {
  it('share a broker and a clock; settle waits for both', async () => {
    const a = counterApp()
    const b = counterApp()
    const t1 = await start(a.app)
    const t2 = await start(b.app, { broker: t1.broker, clock: t1.clock })
    for (let i = 0; i < 20; i++) await t1.send(a.words, { key: `w${i}`, value: `w${i}` })
    await t1.settle()
    let total = 0
    for (const table of [a.counts, b.counts]) for await (const [, n] of table.entries()) total += n
    expect(total).toBe(20)
    expect(t2.clock).toBe(t1.clock)
  })
})
