import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { ErrorAction, Stream, StreamEvent } from '../src/index.js'
import {
  App,
  BrokerError,
  ConfigurationError,
  DecodeError,
  ErrorCodes,
  HEADERS,
  isFenced,
  MephistoError,
  NoEventContextError,
  NotReadyError,
  TransactionError,
} from '../src/index.js'
import { quietApp } from './helpers.js'

const running: TestApp[] = []
async function start(app: App): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

class PaymentDeclined extends Error {}

/** An agent that fails on values starting with 'bad', counting attempts per value. */
function failingApp(
  onError:
    | 'dlq'
    | 'crash'
    | 'skip'
    | ((err: unknown, e: StreamEvent<string, string> | undefined) => ErrorAction | undefined),
  retries = 2,
) {
  const app = quietApp('pay')
  const payments = app.topic<string, string>('payments', { partitions: 1 })
  const attempts = new Map<string, number>()
  const done: string[] = []
  const agent = app.agent(
    payments,
    async (stream) => {
      for await (const p of stream) {
        attempts.set(p, (attempts.get(p) ?? 0) + 1)
        if (p.startsWith('bad')) throw new PaymentDeclined(`declined: ${p}`)
        done.push(p)
      }
    },
    { name: 'charge', onError, retries, retryBackoffMs: 1 },
  )
  return { app, payments, agent, attempts, done }
}

describe("onError: 'dlq' (default)", () => {
  it('retries, then dead-letters the event with error headers and keeps going', async () => {
    const app = quietApp('pay')
    const payments = app.topic<string, string>('payments', { partitions: 1 })
    const attempts = new Map<string, number>()
    const done: string[] = []
    const agent = app.agent(
      payments,
      async (stream) => {
        for await (const p of stream) {
          attempts.set(p, (attempts.get(p) ?? 0) + 1)
          if (p === 'bad') throw new PaymentDeclined('card declined')
          done.push(p)
        }
      },
      { name: 'charge', retries: 2, retryBackoffMs: 1 },
    )
    expect(agent.onError).toBe('dlq')
    const t = await start(app)
    await t.send(payments, { key: 'k1', value: 'ok-1' })
    await t.send(payments, { key: 'k2', value: 'bad', headers: { trace: 't-2' } })
    await t.send(payments, { key: 'k3', value: 'ok-2' })
    await t.settle()

    expect(attempts.get('bad')).toBe(3)
    expect(done).toEqual(['ok-1', 'ok-2'])
    expect(agent.dlqTopic).toBe('pay-payments-dlq')
    const [dead, ...more] = t.records('pay-payments-dlq')
    expect(more).toHaveLength(0)
    expect(dead!.key?.toString()).toBe('k2')
    expect(dead!.value?.toString()).toBe('"bad"')
    const h = Object.fromEntries(Object.entries(dead!.headers).map(([k, v]) => [k, v.toString()]))
    expect(h[HEADERS.error]).toBe('card declined')
    expect(h['mephisto-error']).toBe('card declined')
    expect(h['mephisto-error-code']).toBe('AGENT_FAILED')
    expect(h['mephisto-source-topic']).toBe('payments')
    expect(h['mephisto-source-partition']).toBe('0')
    expect(h['mephisto-source-offset']).toBe('1')
    expect(h['mephisto-agent']).toBe('charge')
    // The original headers travel with the dead letter.
    expect(h.trace).toBe('t-2')
    expect(app.monitor.snapshot().dlq.total).toBe(1)

    await t.commit()
    expect(t.committed(payments).get(0)).toBe(3)
  })

  it('a MephistoError thrown by the agent keeps its code in the dead letter', async () => {
    const app = quietApp('codes')
    const input = app.topic<string, string>('input', { partitions: 1 })
    const agent = app.agent(
      input,
      async (stream) => {
        for await (const _ of stream) throw new MephistoError('PRODUCER', 'downstream refused')
      },
      { retries: 0 },
    )
    const t = await start(app)
    await t.send(input, { value: 'x' })
    await t.settle()
    expect(t.deadLetters(agent).map((d) => [d.code, d.error])).toEqual([['PRODUCER', 'downstream refused']])
  })

  it('uses the dlq option as the dead-letter topic', async () => {
    const app = quietApp('custom-dlq')
    const input = app.topic<string, string>('input', { partitions: 1 })
    const agent = app.agent(
      input,
      async (stream) => {
        for await (const _ of stream) throw new Error('nope')
      },
      { retries: 0, dlq: 'my-dead-letters' },
    )
    const t = await start(app)
    await t.send(input, { value: 'x' })
    await t.settle()
    expect(agent.dlqTopic).toBe('my-dead-letters')
    expect(t.deadLetters('my-dead-letters')).toHaveLength(1)
  })

  it('a value that succeeds on retry is not dead-lettered', async () => {
    const app = quietApp('flaky')
    const input = app.topic<string, string>('input', { partitions: 1 })
    let failures = 2
    const done: string[] = []
    const agent = app.agent(
      input,
      async (stream) => {
        for await (const v of stream) {
          if (failures-- > 0) throw new Error('flaky')
          done.push(v)
        }
      },
      { retries: 2, retryBackoffMs: 1 },
    )
    const t = await start(app)
    await t.send(input, { value: 'x' })
    await t.send(input, { value: 'y' })
    await t.settle()
    expect(done).toEqual(['x', 'y'])
    expect(t.deadLetters(agent)).toHaveLength(0)
  })
})

describe("onError: 'crash'", () => {
  it('stops without committing; settle rejects; the event is redelivered after restart', async () => {
    const app = quietApp('crashy', { commitIntervalMs: 60_000 })
    const payments = app.topic<string, string>('payments', { partitions: 1 })
    let failNext = true
    const seen: string[] = []
    app.agent(
      payments,
      async (stream) => {
        for await (const p of stream) {
          seen.push(p)
          if (p === 'bad' && failNext) {
            failNext = false
            throw new PaymentDeclined('card declined')
          }
        }
      },
      { name: 'charge', onError: 'crash' },
    )
    const t = await start(app)
    await t.send(payments, { value: 'a' })
    await t.settle()
    await t.commit()
    expect(t.committed(payments).get(0)).toBe(1)

    await t.send(payments, { value: 'b' })
    await t.send(payments, { value: 'bad' })
    await t.send(payments, { value: 'c' })
    const err = await t.settle().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(MephistoError)
    expect(err).toMatchObject({ code: 'AGENT_FAILED' })
    expect((err as Error).cause).toBeInstanceOf(PaymentDeclined)
    expect(app.running).toBe(false)
    // Crashing retries nothing and never reaches 'c'.
    expect(seen).toEqual(['a', 'b', 'bad'])
    expect(t.committed(payments).get(0)).toBe(1)

    await t.restart()
    // b was processed but not committed: at-least-once delivers it again, then bad and c.
    expect(seen).toEqual(['a', 'b', 'bad', 'b', 'bad', 'c'])
    await t.commit()
    expect(t.committed(payments).get(0)).toBe(4)
  })
})

describe("onError: 'skip'", () => {
  it('drops the event, counts it and keeps going', async () => {
    const { app, payments, agent, done } = failingApp('skip', 0)
    const t = await start(app)
    for (const v of ['ok-1', 'bad-1', 'ok-2', 'bad-2']) await t.send(payments, { value: v })
    await t.settle()
    expect(done).toEqual(['ok-1', 'ok-2'])
    expect(app.monitor.snapshot().skips).toEqual({ total: 2, byStream: { charge: 2 } })
    expect(t.deadLetters(agent)).toHaveLength(0)
    await t.commit()
    expect(t.committed(payments).get(0)).toBe(4)
  })
})

describe('onError: a function', () => {
  it('chooses per error, receives the failed event, and undefined means skip', async () => {
    const decisions: [string, string | undefined][] = []
    const { app, payments, agent, done } = failingApp((_err, event) => {
      const v = event?.value ?? ''
      const action: ErrorAction | undefined =
        v === 'bad-dlq' ? 'dlq' : v === 'bad-crash' ? 'crash' : undefined
      decisions.push([v, action])
      return action
    }, 0)
    const t = await start(app)
    for (const v of ['ok-1', 'bad-dlq', 'bad-other', 'ok-2']) await t.send(payments, { value: v })
    await t.settle()
    expect(decisions).toEqual([
      ['bad-dlq', 'dlq'],
      ['bad-other', undefined],
    ])
    expect(done).toEqual(['ok-1', 'ok-2'])
    expect(t.deadLetters(agent).map((d) => d.value)).toEqual(['"bad-dlq"'])
    expect(app.monitor.snapshot().skips.total).toBe(1)

    await t.send(payments, { value: 'bad-crash' })
    await expect(t.settle()).rejects.toMatchObject({ code: 'AGENT_FAILED' })
    expect(app.running).toBe(false)
  })

  it('a handler that throws crashes the worker', async () => {
    const { app, payments } = failingApp(() => {
      throw new Error('handler bug')
    }, 0)
    const t = await start(app)
    await t.send(payments, { value: 'bad' })
    await expect(t.settle()).rejects.toMatchObject({ code: 'AGENT_FAILED' })
  })
})

describe('errors thrown inside stream operators', () => {
  function operatorApp(build: (stream: Stream<number, string>) => AsyncIterable<unknown>) {
    const app = quietApp('operators', { topicPartitions: 1 })
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const seen: unknown[] = []
    const agent = app.agent(
      numbers,
      async (stream) => {
        for await (const v of build(stream)) seen.push(v)
      },
      { name: 'ops', retries: 1, retryBackoffMs: 1 },
    )
    return { app, numbers, seen, agent }
  }
  const failOn2 = (n: number): number => {
    if (n === 2) throw new Error(`cannot handle ${n}`)
    return n
  }

  const cases: [string, (s: Stream<number, string>) => AsyncIterable<unknown>, unknown[]][] = [
    ['map', (s) => s.map(failOn2), [0, 1, 3]],
    ['filter', (s) => s.filter((n) => failOn2(n) >= 0), [0, 1, 3]],
    ['groupBy', (s) => s.groupBy((n) => String(failOn2(n)), { name: 'g' }), [0, 1, 3]],
    // The batch in hand fails as a whole, as it does when the body of a take() loop throws.
    ['map before take', (s) => s.map(failOn2).take(10, 1000), [[3]]],
  ]
  for (const [name, build, expected] of cases) {
    it(`${name}: the event goes to onError (retried, then dead-lettered) and the agent keeps going`, async () => {
      const { app, numbers, seen, agent } = operatorApp(build)
      const t = await start(app)
      for (let i = 0; i < 4; i++) await t.send(numbers, { value: i })
      await t.advance(1000)
      expect(app.running).toBe(true)
      expect(seen).toEqual(expected)
      const dead = t.deadLetters(agent)
      if (name === 'map before take') expect(dead.map((d) => d.value)).toEqual(['0', '1', '2'])
      else expect(dead.map((d) => [d.value, d.error])).toEqual([['2', 'cannot handle 2']])
      await t.advance(3000)
      const committed = [...t.committed(numbers).values()]
      expect(committed).toEqual([4])
    })
  }
})

describe('failures outside any event', () => {
  it('an agent that throws before reading crashes the worker instead of looping', async () => {
    const app = quietApp('broken')
    const input = app.topic<string, string>('input', { partitions: 1 })
    app.agent(input, async () => {
      throw new Error('bad setup')
    })
    await expect(TestApp.start(app)).rejects.toThrow('bad setup')
  })
})

describe('MephistoError', () => {
  it('has stable codes', () => {
    expect([...ErrorCodes]).toEqual([
      'CONFIGURATION',
      'DECODE',
      'SCHEMA_VALIDATION',
      'ENCODE',
      'NOT_READY',
      'NO_EVENT_CONTEXT',
      'PARTITION_OUT_OF_RANGE',
      'CO_PARTITIONING',
      'AGENT_FAILED',
      'DEAD_LETTER_FAILED',
      'EVENT_TIMEOUT',
      'LATE_EVENT',
      'ASK_TIMEOUT',
      'BROKER',
      'COMMIT_FAILED',
      'RECOVERY_FAILED',
      'STORE_LOCKED',
      'STORE_CORRUPT',
      'STORE_IO',
      'PRODUCER',
      'TRANSACTION',
      'FENCED',
    ])
  })

  it('carries retriable and fenced as properties, not as words in the message', () => {
    expect(new MephistoError('BROKER', 'x').retriable).toBe(false)
    expect(new BrokerError('leader moving', { retriable: true }).retriable).toBe(true)
    expect(new TransactionError('FENCED', 'a newer producer').fenced).toBe(true)
    expect(new TransactionError('TRANSACTION', 'aborted').fenced).toBe(false)
    expect(isFenced(new TransactionError('FENCED', 'x'))).toBe(true)
    expect(isFenced(new Error('FENCED'))).toBe(false)
  })

  it('subclasses carry their code, name and cause', () => {
    const cause = new Error('root')
    const cases: [MephistoError, string, string][] = [
      [new ConfigurationError('x', { cause }), 'CONFIGURATION', 'ConfigurationError'],
      [new NotReadyError('x'), 'NOT_READY', 'NotReadyError'],
      [new NoEventContextError('x'), 'NO_EVENT_CONTEXT', 'NoEventContextError'],
      [new DecodeError('SCHEMA_VALIDATION', 'value', 'x'), 'SCHEMA_VALIDATION', 'DecodeError'],
    ]
    for (const [err, code, name] of cases) {
      expect(err).toBeInstanceOf(MephistoError)
      expect(err).toBeInstanceOf(Error)
      expect(err.code).toBe(code)
      expect(err.name).toBe(name)
    }
    expect(cases[0]![0].cause).toBe(cause)
  })
})

describe('configuration errors', () => {
  it('rejects a bad app id', () => {
    for (const id of ['', 'has space', 'slash/no', 'x'.repeat(201)]) {
      expect(() => new App({ id })).toThrow(ConfigurationError)
    }
    expect(() => new App({ id: 'bad id' })).toThrow(/App needs an id of letters, digits/)
    expect(() => new App({} as { id: string })).toThrow(ConfigurationError)
  })

  it('rejects non-positive numeric options', () => {
    expect(() => new App({ id: 'a', commitIntervalMs: 0 })).toThrow(
      /commitIntervalMs must be a positive integer/,
    )
    expect(() => new App({ id: 'a', topicPartitions: 1.5 })).toThrow(ConfigurationError)
    expect(() => new App({ id: 'a', processingGuarantee: 'maybe' as 'exactly_once' })).toThrow(
      ConfigurationError,
    )
  })

  it('rejects concurrency 0 and an unknown onError', () => {
    const app = quietApp('conf')
    const input = app.topic('input')
    expect(() => app.agent(input, async () => {}, { concurrency: 0 })).toThrow(ConfigurationError)
    expect(() => app.agent(input, async () => {}, { concurrency: 0 })).toThrow(
      /concurrency must be a positive integer/,
    )
    expect(() => app.agent(input, async () => {}, { onError: 'retry' as 'dlq' })).toThrow(ConfigurationError)
  })

  it('rejects two agents with one name', () => {
    const app = quietApp('conf')
    const input = app.topic('input')
    app.agent(input, async () => {}, { name: 'same' })
    expect(() => app.agent(input, async () => {}, { name: 'same' })).toThrow(/already declared/)
  })

  it('rejects a bad cron expression when it is declared', () => {
    const app = quietApp('conf')
    expect(() => app.crontab('every tuesday', () => {})).toThrow(ConfigurationError)
    expect(() => app.crontab('61 * * * *', () => {})).toThrow(/invalid crontab "61 \* \* \* \*"/)
  })

  it('rejects a bad timer interval', () => {
    const app = quietApp('conf')
    expect(() => app.timer(0, () => {})).toThrow(ConfigurationError)
  })

  it('rejects an unknown store with a clear message', async () => {
    const app = quietApp('conf', { store: 'redis://localhost' })
    const err = await app.start().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigurationError)
    expect((err as Error).message).toMatch(/unknown store "redis:\/\/localhost".*memory:\/\/.*rocksdbStore/)
    expect(app.running).toBe(false)
  })

  it('rejects a bad table name and bad partitions', () => {
    const app = quietApp('conf')
    expect(() => app.table('no spaces')).toThrow(ConfigurationError)
    expect(() => app.table('t', { partitions: 0 })).toThrow(ConfigurationError)
  })

  it('rejects declarations on a running app', async () => {
    const app = quietApp('conf')
    const t = await start(app)
    expect(() => app.topic('late')).toThrow(/already running/)
    expect(() => app.table('late')).toThrow(ConfigurationError)
    await t.stop()
  })

  it('says what to do when the app is used before start', async () => {
    const app = quietApp('conf')
    const input = app.topic<string, string>('input')
    const table = app.table<string, number>('t')
    await expect(input.send({ value: 'x' })).rejects.toThrow(NotReadyError)
    await expect(input.send({ value: 'x' })).rejects.toThrow(/await app.start\(\) first/)
    await expect(table.get('k')).rejects.toThrow(NotReadyError)
  })
})
