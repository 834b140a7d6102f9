// Tables under the values and mistakes production brings (issue 13): a value the codec cannot
// encode, a value too large for the changelog, a value changed in place, and a repartition topic
// sized unlike its source.
import { TestApp } from '@mephisto/testkit'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { afterEach, describe, expect, it } from 'vitest'
import type { App, ProcessingGuarantee } from '../src/index.js'
import { ConfigurationError, DecodeError, EncodeError, json, memoryStore } from '../src/index.js'
import { quietApp } from './helpers.js'

const running: TestApp[] = []
async function start(app: App, options: { freezeTableValues?: boolean } = {}): Promise<TestApp> {
  const t = await TestApp.start(app, options)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

interface Write {
  key: string
  n?: number
  poison?: boolean
  size?: number
}

describe('a table value the codec cannot encode', () => {
  it.each<ProcessingGuarantee>(['at_least_once', 'exactly_once'])(
    'fails the event that set it, not every commit after it (%s)',
    async (processingGuarantee) => {
      const app = quietApp('poison', { processingGuarantee, commitIntervalMs: 60_000 })
      const writes = app.topic<string, Write>('writes', { partitions: 2 })
      const totals = app.table<string, { n: unknown }>('totals', { partitions: 2 })
      const agent = app.agent(
        writes,
        async (stream) => {
          for await (const w of stream) totals.set(w.key, w.poison ? { n: 10n } : { n: w.n })
        },
        { name: 'writer', retryBackoffMs: 1 },
      )
      const t = await start(app)
      const send = (partition: number, value: Write) => t.send(writes, { key: value.key, value, partition })
      await send(0, { key: 'a', n: 1 })
      await send(1, { key: 'c', n: 3 })
      await send(0, { key: 'bad-key', poison: true })
      await send(0, { key: 'b', n: 2 })
      await send(1, { key: 'd', n: 4 })
      await t.settle()
      await t.commit()

      const dead = t.deadLetters(agent)
      expect(dead).toHaveLength(1)
      expect(dead[0]).toMatchObject({ code: 'ENCODE', sourcePartition: 0, sourceOffset: 1 })
      expect(dead[0]!.error).toMatch(/table totals: the value for key "bad-key" cannot be encoded/)
      // Both partitions committed past the bad event.
      expect(t.committed(writes)).toEqual(
        new Map([
          [0, 3],
          [1, 2],
        ]),
      )
      const changelog = t.records('poison-totals-changelog').map((r) => r.key!.toString())
      expect(changelog.sort()).toEqual(['a', 'b', 'c', 'd'])

      // Later events commit too, and a restarted worker never sees the bad value.
      await send(0, { key: 'e', n: 5 })
      await t.settle()
      await t.commit()
      expect(t.committed(writes).get(0)).toBe(4)
      await t.crash()
      await t.restart()
      expect(await totals.has('bad-key', { partition: 0 })).toBe(false)
      expect(await totals.get('e', { partition: 0 })).toEqual({ n: 5 })
      expect(await totals.get('d', { partition: 1 })).toEqual({ n: 4 })
    },
  )

  it('throws an EncodeError naming table and key at set(), storing nothing', async () => {
    const app = quietApp('poison-direct')
    const table = app.table<[string, number], { n: unknown }>('grid', {
      partitions: 1,
      key: json(),
    })
    const t = await start(app)
    let err: unknown
    try {
      table.set(['x', 1], { n: 10n }, { partition: 0 })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(EncodeError)
    expect(err).toMatchObject({ code: 'ENCODE' })
    expect((err as Error).message).toMatch(/table grid: the value for key \["x",1\] cannot be encoded/)
    expect(await table.has(['x', 1], { partition: 0 })).toBe(false)
    await t.commit()
    expect(t.records('poison-direct-grid-changelog')).toHaveLength(0)
  })
})

describe('a table value its schema refuses', () => {
  /** A hand-written Standard Schema (what zod, valibot and arktype implement): { n >= 0 }. */
  const countSchema: StandardSchemaV1<unknown, { n: number }> = {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate(value) {
        const n = (value as { n?: unknown } | null)?.n
        if (typeof n !== 'number' || n < 0)
          return { issues: [{ message: 'expected a number >= 0', path: ['n'] }] }
        return { value: { n } }
      },
    },
  }

  it('fails at set(), not at the recovery of every later worker', async () => {
    const app = quietApp('schema-table')
    const counts = app.table<string, { n: number }>('counts', { partitions: 1, value: countSchema })
    const t = await start(app)
    counts.set('ok', { n: 1 }, { partition: 0 })
    let err: unknown
    try {
      counts.set('bad', { n: -1 }, { partition: 0 })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(DecodeError)
    expect(err).toMatchObject({ code: 'SCHEMA_VALIDATION', issues: [{ message: 'expected a number >= 0' }] })
    expect((err as Error).message).toMatch(/table counts: the value for key "bad": .*expected a number >= 0/)
    await t.commit()
    await t.crash()
    await t.restart()
    expect(await counts.get('ok', { partition: 0 })).toEqual({ n: 1 })
    expect(await counts.has('bad', { partition: 0 })).toBe(false)
  })
})

describe('a table value too large for the changelog', () => {
  it('fails the event that set it, naming maxValueBytes; the changelog is created to match', async () => {
    const app = quietApp('big-values')
    const writes = app.topic<string, Write>('writes', { partitions: 1 })
    const blobs = app.table<string, string>('blobs', { partitions: 1, maxValueBytes: 1000 })
    app.table('plain', { partitions: 1 })
    const agent = app.agent(
      writes,
      async (stream) => {
        for await (const w of stream) blobs.set(w.key, 'x'.repeat(w.size ?? 0))
      },
      { name: 'blobber', retryBackoffMs: 1 },
    )
    const t = await start(app)
    await t.send(writes, { value: { key: 'small', size: 100 } })
    await t.send(writes, { value: { key: 'huge', size: 2000 } })
    // 996 characters + 2 quotes + a 2-byte key: exactly the limit.
    await t.send(writes, { value: { key: 'at', size: 996 } })
    await t.send(writes, { value: { key: 'over', size: 996 } })
    await t.settle()
    await t.commit()

    const dead = t.deadLetters(agent)
    expect(dead.map((d) => [d.sourceOffset, d.code])).toEqual([
      [1, 'ENCODE'],
      [3, 'ENCODE'],
    ])
    expect(dead[0]!.error).toMatch(
      /table blobs: the value for key "huge" is 2002 bytes encoded \(key 4\), over the table's limit of 1000 bytes .*maxValueBytes/,
    )
    expect(t.committed(writes).get(0)).toBe(4)
    expect(t.records('big-values-blobs-changelog').map((r) => r.key!.toString())).toEqual(['small', 'at'])
    expect(t.broker.topicSpec('big-values-blobs-changelog')?.config).toEqual({ 'max.message.bytes': '2024' })
    expect(t.broker.topicSpec('big-values-plain-changelog')?.config).toEqual({
      'max.message.bytes': String(1024 * 1024),
    })
  })

  it('defaults to 1 MiB minus 1 KiB for key and value, and refuses a bad maxValueBytes', async () => {
    const app = quietApp('big-default')
    const table = app.table<string, string>('t', { partitions: 1 })
    const t = await start(app)
    const limit = 1024 * 1024 - 1024
    // JSON adds two quotes; the key 'k' is one byte.
    table.set('k', 'x'.repeat(limit - 3), { partition: 0 })
    expect(() => table.set('k', 'x'.repeat(limit - 2), { partition: 0 })).toThrow(EncodeError)
    expect((await table.get('k', { partition: 0 })).length).toBe(limit - 3)
    await t.commit()
    expect(t.records('big-default-t-changelog')).toHaveLength(1)
    for (const maxValueBytes of [0, -1, 1.5, Number.NaN]) {
      expect(() => quietApp('bad').table('t', { maxValueBytes })).toThrow(ConfigurationError)
    }
  })
})

describe('a table value changed in place', () => {
  interface Counter {
    n: number
    tags: string[]
  }

  function counterApp(id: string) {
    const app = quietApp(id, { commitIntervalMs: 60_000 })
    const bumps = app.topic<string, { key: string; how: 'in-place' | 'set' }>('bumps', { partitions: 1 })
    const counters = app.table<string, Counter>('counters', {
      partitions: 1,
      default: () => ({ n: 0, tags: [] }),
    })
    const agent = app.agent(
      bumps,
      async (stream) => {
        for await (const b of stream) {
          const c = await counters.get(b.key)
          if (b.how === 'in-place') {
            c.n++ // the mistake: never set(), so a restart forgets it
          } else {
            counters.set(b.key, { n: c.n + 1, tags: [...c.tags, 'bumped'] })
          }
        }
      },
      { name: 'bumper', retries: 0 },
    )
    return { app, bumps, counters, agent }
  }

  it('throws in the testkit, where table reads hand out frozen values', async () => {
    const { app, bumps, counters, agent } = counterApp('frozen')
    const t = await start(app)
    await t.send(bumps, { value: { key: 'k', how: 'set' } })
    await t.send(bumps, { value: { key: 'k', how: 'in-place' } }) // a pending write
    await t.commit()
    await t.send(bumps, { value: { key: 'k', how: 'in-place' } }) // a stored value
    await t.send(bumps, { value: { key: 'missing', how: 'in-place' } }) // the default
    await t.settle()
    const dead = t.deadLetters(agent)
    expect(dead.map((d) => d.sourceOffset)).toEqual([1, 2, 3])
    for (const d of dead) expect(d.error).toMatch(/read.only|not extensible|frozen/i)
    expect(await counters.get('k')).toEqual({ n: 1, tags: ['bumped'] })

    // What set() was given is frozen with it: a change after set() would not reach the changelog.
    const value: Counter = { n: 5, tags: ['a'] }
    counters.set('other', value, { partition: 0 })
    expect(() => {
      value.tags.push('b')
    }).toThrow(TypeError)
  })

  it('without frozen values the change shows until a restart, then is gone (why the testkit freezes)', async () => {
    const { app, bumps, counters } = counterApp('unfrozen')
    const t = await start(app, { freezeTableValues: false })
    await t.send(bumps, { value: { key: 'k', how: 'set' } })
    await t.settle()
    await t.commit()
    await t.send(bumps, { value: { key: 'k', how: 'in-place' } })
    await t.settle()
    await t.commit()
    expect((await counters.get('k')).n).toBe(2)
    await t.crash()
    await t.restart()
    expect((await counters.get('k')).n).toBe(1)
  })

  it('memoryStore({ freezeValues: true }) freezes what it holds, deeply, byte arrays aside', async () => {
    const store = await memoryStore({ freezeValues: true }).open<{ a: { b: number[] }; raw: Buffer }>({
      appId: 'x',
      table: 't',
      partitions: 1,
      encode: () => Buffer.alloc(0),
      decode: () => ({ a: { b: [] }, raw: Buffer.alloc(0) }),
    })
    expect(store.frozenValues).toBe(true)
    await store.write(0, [{ key: 'k', value: { a: { b: [1] }, raw: Buffer.from('x') } }], 0)
    const v = (await store.get(0, 'k'))!
    expect(Object.isFrozen(v) && Object.isFrozen(v.a) && Object.isFrozen(v.a.b)).toBe(true)
    v.raw[0] = 0x79
    expect(v.raw.toString()).toBe('y')
    const plain = await memoryStore().open<{ n: number }>({
      appId: 'x',
      table: 't',
      partitions: 1,
      encode: () => Buffer.alloc(0),
      decode: () => ({ n: 0 }),
    })
    await plain.write(0, [{ key: 'k', value: { n: 1 } }], 0)
    expect(Object.isFrozen(await plain.get(0, 'k'))).toBe(false)
  })
})

describe('a configuration mistake found while processing', () => {
  it("a groupBy's repartition topic has its source topic's partitions, so a table sharded like the source fits", async () => {
    const app = quietApp('regroup', { topicPartitions: 8 })
    const orders = app.topic<string, { user: string }>('orders', { partitions: 4 })
    const perUser = app.table<string, number>('per-user', { partitions: 4, default: () => 0 })
    const agent = app.agent(
      orders,
      async (stream) => {
        for await (const o of stream.groupBy((o) => o.user, { name: 'user' }))
          perUser.set(o.user, (await perUser.get(o.user)) + 1)
      },
      { name: 'count-orders' },
    )
    const commands = app.channel<{ user: string }>('commands')
    app.agent(
      commands,
      async (stream) => {
        for await (const _ of stream.groupBy((c) => c.user, { name: 'user' })) {
          // a channel has no partitions of its own: its repartition topic takes the app default
        }
      },
      { name: 'commands' },
    )
    const t = await start(app)
    for (let i = 0; i < 40; i++) await t.send(orders, { key: `order-${i}`, value: { user: `u${i % 5}` } })
    await t.settle()
    expect(t.broker.partitionCount('regroup-count-orders-user-repartition')).toBe(4)
    expect(t.broker.partitionCount('regroup-commands-user-repartition')).toBe(8)
    expect(t.deadLetters(agent)).toEqual([])
    for (let u = 0; u < 5; u++) expect(await perUser.get(`u${u}`)).toBe(8)
  })

  it('stops the worker with the fix named instead of dead-lettering every event', async () => {
    const app = quietApp('misfit')
    const orders = app.topic<string, string>('orders', { partitions: 4 })
    const table = app.table<string, string>('last', { partitions: 2 })
    let attempts = 0
    const agent = app.agent(
      orders,
      async (stream) => {
        for await (const o of stream) {
          attempts++
          table.set(o, o)
        }
      },
      { name: 'misfit-agent', retryBackoffMs: 1 },
    )
    const t = await start(app)
    await t.send(orders, { value: 'fine', partition: 1 })
    await t.settle()
    expect(attempts).toBe(1)
    await t.send(orders, { value: 'misfit', partition: 3 })
    const err = await t.settle().catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CO_PARTITIONING' })
    expect((err as Error).message).toMatch(/give the table as many partitions as orders/)
    expect(app.experimental_testing.state).toBe('crashed')
    // Not retried, not dead-lettered, not committed: it is processed again once the fix is in.
    expect(attempts).toBe(2)
    expect(t.deadLetters(agent)).toEqual([])
    expect(t.committed(orders).get(3) ?? -1).toBeLessThanOrEqual(0)
  })

  it('any ConfigurationError thrown while processing stops the worker, whatever onError says', async () => {
    const app = quietApp('misconfigured')
    const jobs = app.topic<string, string>('jobs', { partitions: 1 })
    const agent = app.agent(
      jobs,
      async (stream) => {
        for await (const _ of stream) throw new ConfigurationError('JOBS_URL is not set: set it and restart')
      },
      { name: 'jobs-agent', onError: 'skip' },
    )
    const t = await start(app)
    await t.send(jobs, { value: 'one' })
    await expect(t.settle()).rejects.toThrow(/JOBS_URL is not set/)
    expect(t.deadLetters(agent)).toEqual([])
  })
})
