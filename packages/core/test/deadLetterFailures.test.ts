import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { Transport, TransportProducer } from '../src/index.js'
import { App, HEADERS, MemoryBroker, MemoryTransport } from '../src/index.js'

const started: App[] = []
afterEach(async () => {
  for (const app of started.splice(0)) await app.stop().catch(() => {})
})

/** A memory transport whose producers refuse sends to dead-letter topics while `down.dlq` is set. */
function dlqOutage(broker: MemoryBroker): {
  transport: Transport
  down: { dlq: boolean }
  refused: () => number
} {
  const base = new MemoryTransport(broker)
  const down = { dlq: false }
  let refused = 0
  const transport: Transport = Object.create(base, {
    producer: {
      value: (): TransportProducer => {
        const p = base.producer()
        return Object.assign(Object.create(p), {
          send: async (record: { topic: string }) => {
            if (down.dlq && record.topic.endsWith('-dlq')) {
              refused++
              throw new Error('dead-letter topic out of reach')
            }
            return p.send(record as never)
          },
        }) as TransportProducer
      },
    },
  })
  return { transport, down, refused: () => refused }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('dead letters that cannot be written', () => {
  it('sends a channel value JSON cannot hold as a readable rendering, with the encode error in its headers', async () => {
    const app = new App({ id: 'dlq-render', logger: 'silent' })
    const numbers = app.channel<{ n: bigint }>('numbers')
    const agent = app.agent(
      numbers,
      async (stream) => {
        for await (const v of stream) throw new Error(`refused ${v.n}`)
      },
      { retries: 0 },
    )
    const t = await TestApp.start(app)
    await numbers.send({ value: { n: 10n } })
    await t.settle()
    const [dead] = t.deadLetters(agent)
    expect(dead?.value).toContain('10n')
    expect(dead?.error).toBe('refused 10')
    expect(dead?.headers[HEADERS.valueRendering]).toBe('inspect')
    expect(dead?.headers[HEADERS.encodeError]).toMatch(/BigInt/)
    expect(app.running).toBe(true)
    await t.stop()
  })

  it('retries a failed dead-letter write, then rolls the worker back and restarts it; the event is dead-lettered once the topic is back', async () => {
    const broker = new MemoryBroker()
    const { transport, down, refused } = dlqOutage(broker)
    const app = new App({ id: 'dlq-outage', logger: 'silent', commitIntervalMs: 50 })
    started.push(app)
    const input = app.topic<string, string>('input', { partitions: 1 })
    const agent = app.agent(
      input,
      async (stream) => {
        for await (const v of stream) if (v === 'bad') throw new Error('poison')
      },
      { retries: 1, retryBackoffMs: 1 },
    )
    let restarts = 0
    app.sensors.add({ onWorkerRestart: () => void restarts++ })
    await app.start({ transport })
    const first = app.experimental_testing
    down.dlq = true
    await input.sendAndWait({ key: 'k', value: 'bad' })
    await until('the first worker to roll back', () => restarts > 0 || first.state === 'crashed')
    // The agent's retries: the first attempt and one more.
    expect(refused()).toBe(2)
    down.dlq = false
    await until('the dead letter', () => broker.records(agent.dlqTopic).length === 1)
    await until(
      'the commit past the poison event',
      () => broker.groupOffsets('dlq-outage', 'input').get(0) === 1,
    )
    expect(restarts).toBe(1)
    expect(app.running).toBe(true)
  })

  it('does the same for a record that cannot be decoded', async () => {
    const broker = new MemoryBroker()
    const { transport, down } = dlqOutage(broker)
    const app = new App({ id: 'dlq-outage-decode', logger: 'silent', commitIntervalMs: 50 })
    started.push(app)
    const input = app.topic<string, { n: number }>('input', { partitions: 1 })
    const agent = app.agent(input, async (stream) => {
      for await (const _ of stream) {
      }
    })
    let restarts = 0
    app.sensors.add({ onWorkerRestart: () => void restarts++ })
    await app.start({ transport })
    down.dlq = true
    broker.append('input', 0, { key: Buffer.from('k'), value: Buffer.from('{not json'), headers: {} })
    await until('a restart', () => restarts > 0)
    down.dlq = false
    await until('the dead letter', () => broker.records(agent.dlqTopic).length === 1)
    await until(
      'the commit past the bad record',
      () => broker.groupOffsets('dlq-outage-decode', 'input').get(0) === 1,
    )
    expect(app.running).toBe(true)
  })
})
