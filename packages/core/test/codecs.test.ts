import { TestApp } from '@mephisto/testkit'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { afterEach, describe, expect, it } from 'vitest'
import type { App, Codec } from '../src/index.js'
import { bytes, DecodeError, EncodeError, HEADERS, json, string } from '../src/index.js'
import type { Hit } from './helpers.js'
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

/** A hand-written Standard Schema (what zod, valibot and arktype implement). */
const hitSchema: StandardSchemaV1<unknown, Hit> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate(value) {
      const issues: StandardSchemaV1.Issue[] = []
      const v = value as Partial<Hit> | null
      if (typeof v !== 'object' || v === null) return { issues: [{ message: 'expected an object' }] }
      if (typeof v.userId !== 'string') issues.push({ message: 'expected a string', path: ['userId'] })
      if (typeof v.hits !== 'number' || v.hits < 0)
        issues.push({ message: 'expected a number >= 0', path: [{ key: 'hits' }] })
      if (issues.length > 0) return { issues }
      return { value: { userId: v.userId!, hits: v.hits!, timestamp: v.timestamp ?? 0 } }
    },
  },
}

function validatedApp() {
  const app = quietApp('validated')
  const hits = app.topic<string, Hit>('hits', { value: hitSchema, partitions: 1 })
  const seen: Hit[] = []
  const agent = app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) seen.push(hit)
    },
    { name: 'record' },
  )
  return { app, hits, seen, agent }
}

describe('bad input goes to the dead-letter topic', () => {
  it('malformed JSON: the raw bytes with error headers; the agent keeps going', async () => {
    const app = quietApp('raw')
    const events = app.topic<string, { n: number }>('events', { partitions: 1 })
    const seen: number[] = []
    const agent = app.agent(
      events,
      async (stream) => {
        for await (const e of stream) seen.push(e.n)
      },
      { name: 'reader' },
    )
    const t = await start(app)
    await t.send(events, { value: { n: 1 } })
    await t.sendRaw('events', { key: 'k', value: '{not json', headers: { origin: 'legacy' } })
    await t.send(events, { value: { n: 2 } })
    await t.settle()

    expect(seen).toEqual([1, 2])
    const [dead, ...rest] = t.deadLetters(agent)
    expect(rest).toEqual([])
    expect(dead).toMatchObject({
      key: 'k',
      value: '{not json',
      code: 'DECODE',
      sourceTopic: 'events',
      sourcePartition: 0,
      sourceOffset: 1,
      agent: 'reader',
    })
    expect(dead!.error).toMatch(/cannot decode value/)
    expect(dead!.headers[HEADERS.errorClass]).toBe('DecodeError')
    expect(dead!.headers.origin).toBe('legacy')
    expect(app.monitor.snapshot().dlq).toMatchObject({
      total: 1,
      byDlqTopic: { 'raw-events-dlq': 1 },
      bySourceTopic: { events: 1 },
    })
    await t.commit()
    expect(t.committed(events).get(0)).toBe(3)
  })

  it('a value failing Standard Schema validation, with the issues in the error', async () => {
    const { app, seen, agent } = validatedApp()
    const t = await start(app)
    await t.sendRaw('hits', { value: JSON.stringify({ userId: 'u1', hits: 3, timestamp: 1 }) })
    await t.sendRaw('hits', { value: JSON.stringify({ userId: 42, hits: -1 }) })
    await t.sendRaw('hits', { value: 'not json either' })
    await t.sendRaw('hits', { value: JSON.stringify({ userId: 'u2', hits: 5 }) })
    await t.settle()

    expect(seen).toEqual([
      { userId: 'u1', hits: 3, timestamp: 1 },
      { userId: 'u2', hits: 5, timestamp: 0 },
    ])
    const dead = t.deadLetters(agent)
    expect(dead.map((d) => [d.sourceOffset, d.code])).toEqual([
      [1, 'SCHEMA_VALIDATION'],
      [2, 'DECODE'],
    ])
    expect(dead[0]!.error).toBe(
      'value failed schema validation: userId: expected a string; hits: expected a number >= 0',
    )
    expect(dead[0]!.value).toBe('{"userId":42,"hits":-1}')
    expect(app.monitor.snapshot().dlq.total).toBe(2)
  })

  it('a key that fails its codec', async () => {
    const app = quietApp('keys')
    const numericKey: Codec<number> = {
      encode: (n) => Buffer.from(String(n)),
      decode: (b) => {
        const n = Number(b.toString())
        if (!Number.isInteger(n)) throw new Error(`not an integer: ${b.toString()}`)
        return n
      },
    }
    const events = app.topic<number, string>('events', { key: numericKey, partitions: 1 })
    const keys: number[] = []
    const agent = app.agent(events, async (stream) => {
      for await (const [k] of stream.items()) keys.push(k)
    })
    const t = await start(app)
    await t.send(events, { key: 7, value: 'a' })
    await t.sendRaw('events', { key: 'seven', value: '"b"' })
    await t.send(events, { key: 8, value: 'c' })
    await t.settle()
    expect(keys).toEqual([7, 8])
    expect(t.deadLetters(agent).map((d) => [d.code, d.error])).toEqual([
      ['DECODE', 'cannot decode key: not an integer: seven'],
    ])
  })

  it('a string key that is not valid UTF-8 goes to the DLQ instead of turning into another key', async () => {
    const app = quietApp('utf8-keys')
    const events = app.topic<string, string>('events', { partitions: 1 })
    const keys: string[] = []
    const agent = app.agent(events, async (stream) => {
      for await (const [k] of stream.items()) keys.push(k)
    })
    const t = await start(app)
    await t.sendRaw('events', { key: Buffer.from([0x75, 0xff, 0x31]), value: '"a"' })
    await t.sendRaw('events', { key: 'u1', value: '"b"' })
    await t.settle()
    expect(keys).toEqual(['u1'])
    const [dead] = t.deadLetters(agent)
    expect(dead?.code).toBe('DECODE')
    expect(dead?.error).toMatch(/key: 3 byte\(s\) that are not valid UTF-8/)
  })

  it('every agent on the topic gets the dead letter in its own DLQ, once', async () => {
    const app = quietApp('two-readers')
    const events = app.topic<string, number>('events', { partitions: 1 })
    const a = app.agent(
      events,
      async (stream) => {
        for await (const _ of stream) {
          // read
        }
      },
      { name: 'a', dlq: 'a-dlq' },
    )
    const b = app.agent(
      events,
      async (stream) => {
        for await (const _ of stream) {
          // read
        }
      },
      { name: 'b', dlq: 'b-dlq' },
    )
    const t = await start(app)
    await t.sendRaw('events', { value: '{' })
    await t.settle()
    expect(t.deadLetters(a).map((d) => d.agent)).toEqual(['a'])
    expect(t.deadLetters(b).map((d) => d.agent)).toEqual(['b'])
    expect(app.monitor.snapshot().dlq.total).toBe(2)
  })
})

describe('sending', () => {
  it('a schema topic sends JSON, and the agent reads it back validated', async () => {
    const { app, hits, seen } = validatedApp()
    const t = await start(app)
    await t.send(hits, { key: 'u1', value: { userId: 'u1', hits: 9, timestamp: 5 } })
    await t.settle()
    expect(t.records('hits')[0]!.value?.toString()).toBe('{"userId":"u1","hits":9,"timestamp":5}')
    expect(seen).toEqual([{ userId: 'u1', hits: 9, timestamp: 5 }])
  })

  it('a value the schema refuses fails the send with its issues (SCHEMA_VALIDATION) and sends nothing', async () => {
    const { app, hits, seen, agent } = validatedApp()
    const t = await start(app)
    const bad = { userId: 42, hits: -1 } as unknown as Hit
    for (const send of [() => hits.send({ key: 'u1', value: bad }), () => t.send(hits, { value: bad })]) {
      let err: unknown
      await send().catch((e: unknown) => {
        err = e
      })
      expect(err).toBeInstanceOf(DecodeError)
      expect(err).toMatchObject({
        code: 'SCHEMA_VALIDATION',
        field: 'value',
        message:
          'cannot send to hits: value failed schema validation: userId: expected a string; hits: expected a number >= 0',
        issues: [
          { message: 'expected a string', path: ['userId'] },
          { message: 'expected a number >= 0', path: ['hits'] },
        ],
      })
    }
    await t.send(hits, { key: 'u2', value: { userId: 'u2', hits: 1, timestamp: 0 } })
    await t.settle()
    expect(t.records('hits').map((r) => r.key?.toString())).toEqual(['u2'])
    expect(seen).toEqual([{ userId: 'u2', hits: 1, timestamp: 0 }])
    expect(t.deadLetters(agent)).toEqual([])
  })

  it("inside an agent, a send the schema refuses is that event's error, under its onError", async () => {
    const app = quietApp('agent-send')
    const raw = app.topic<string, { user: string; n: number }>('raw', { partitions: 1 })
    const hits = app.topic('hits', { value: hitSchema, partitions: 1 })
    const agent = app.agent(
      raw,
      async (stream) => {
        for await (const r of stream) await hits.send({ value: { userId: r.user, hits: r.n, timestamp: 0 } })
      },
      { retries: 0 },
    )
    const t = await start(app)
    await t.send(raw, { value: { user: 'u1', n: -5 } })
    await t.send(raw, { value: { user: 'u2', n: 5 } })
    await t.settle()
    expect(t.records('hits').map((r) => r.value?.toString())).toEqual([
      '{"userId":"u2","hits":5,"timestamp":0}',
    ])
    expect(t.deadLetters(agent).map((d) => [d.sourceOffset, d.code, d.error])).toEqual([
      [
        0,
        'SCHEMA_VALIDATION',
        'cannot send to hits: value failed schema validation: hits: expected a number >= 0',
      ],
    ])
  })

  it('a key the key schema refuses fails the send too', async () => {
    const app = quietApp('key-schema')
    const userKey: StandardSchemaV1<unknown, string> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (v) =>
          typeof v === 'string' && v.startsWith('user-')
            ? { value: v }
            : { issues: [{ message: 'not a user id' }] },
      },
    }
    const users = app.topic('users', { key: userKey, partitions: 1 })
    const t = await start(app)
    await expect(users.send({ key: 'nobody', value: 1 })).rejects.toMatchObject({
      code: 'SCHEMA_VALIDATION',
      field: 'key',
      issues: [{ message: 'not a user id' }],
    })
    await users.sendAndWait({ key: 'user-1', value: 1 })
    // A key schema's keys are JSON, as its values are.
    expect(t.records('users').map((r) => r.key?.toString())).toEqual(['"user-1"'])
  })

  it('a value the codec cannot encode fails the send with EncodeError and sends nothing', async () => {
    const app = quietApp('encode')
    const names = app.topic<string, string>('names', { value: string(), partitions: 1 })
    const blobs = app.topic<string, Buffer>('blobs', { value: bytes(), partitions: 1 })
    const t = await start(app)
    await expect(names.send({ value: 42 as unknown as string })).rejects.toThrow(EncodeError)
    await expect(blobs.send({ value: 'text' as unknown as Buffer })).rejects.toMatchObject({ code: 'ENCODE' })
    await expect(names.send({ key: 5 as unknown as string, value: 'x' })).rejects.toThrow(
      /cannot encode the message for names/,
    )
    expect(t.records('names')).toEqual([])
    expect(t.records('blobs')).toEqual([])
  })

  it('json() refuses undefined instead of writing "undefined"', async () => {
    const app = quietApp('undef')
    const things = app.topic<string, unknown>('things', { value: json(), partitions: 1 })
    const t = await start(app)
    await expect(things.send({ value: undefined })).rejects.toThrow(EncodeError)
    expect(t.records('things')).toEqual([])
  })

  it('string() decodes ASCII, multi-byte UTF-8 and long strings, and refuses invalid UTF-8', () => {
    const codec = string()
    for (const text of [
      '',
      'k1',
      'user-42',
      'ünïcødé ✓ 🐍',
      'x'.repeat(64),
      'y'.repeat(65),
      `${'a'.repeat(63)}é`,
    ]) {
      expect(codec.decode(codec.encode(text))).toBe(text)
    }
    expect(() => codec.decode(Buffer.from([0x61, 0xc3]))).toThrow(/not valid UTF-8/)
    expect(() => codec.decode(Buffer.from([...Buffer.from('z'.repeat(70)), 0xff]))).toThrow(/not valid UTF-8/)
  })

  it('bytes() and string() round-trip', async () => {
    const app = quietApp('round-trip')
    const blobs = app.topic<string, Buffer>('blobs', { value: bytes(), partitions: 1 })
    const seen: Buffer[] = []
    app.agent(blobs, async (stream) => {
      for await (const b of stream) seen.push(b)
    })
    const t = await start(app)
    await t.send(blobs, { key: 'k', value: Buffer.from([0, 255, 1]) })
    await t.settle()
    expect(seen).toEqual([Buffer.from([0, 255, 1])])
  })
})
