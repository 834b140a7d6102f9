import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { App } from '../src/index.js'
import { json, MephistoError, NoEventContextError } from '../src/index.js'
import { hitCounter, quietApp } from './helpers.js'

const running: TestApp[] = []
async function start(app: App): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

type Command =
  | { op: 'set'; key: string; value: number }
  | { op: 'delete'; key: string }
  | { op: 'add'; key: string; by: number }
  | { op: 'probe'; key: string }

/** An agent that runs table commands, so every operation is exercised inside an event. */
function kvApp() {
  const app = quietApp('kv')
  const commands = app.topic<string, Command>('commands', { partitions: 1 })
  const kv = app.table<string, number>('kv', { default: () => -1, partitions: 1 })
  const probes: { key: string; value: number; has: boolean }[] = []
  const agent = app.agent(
    commands,
    async (stream) => {
      for await (const c of stream) {
        if (c.op === 'set') kv.set(c.key, c.value)
        else if (c.op === 'delete') kv.delete(c.key)
        else if (c.op === 'add') await kv.update(c.key, (v) => (v === -1 ? 0 : v) + c.by)
        else probes.push({ key: c.key, value: await kv.get(c.key), has: await kv.has(c.key) })
      }
    },
    { name: 'kv-agent' },
  )
  return { app, commands, kv, agent, probes }
}

async function entries<K, V>(it: AsyncIterable<[K, V]>): Promise<[K, V][]> {
  const out: [K, V][] = []
  for await (const e of it) out.push(e)
  return out.sort(([a], [b]) => String(a).localeCompare(String(b)))
}

describe('table operations', () => {
  it('a commit of 300,000 writes puts every one in the changelog', async () => {
    // Regression: the records of a commit were spread into push(), which overflows the call stack
    // past ~120k arguments; the failed commit then left writes stored but never in the changelog.
    const app = quietApp('big-commit', { commitIntervalMs: 3_600_000, commitEvery: 1_000_000 })
    const table = app.table<string, number>('values', { partitions: 2 })
    const N = 300_000
    app.task(() => {
      for (let i = 0; i < N; i++) table.set(`k${i}`, i, { partition: i % 2 })
    })
    const t = await start(app)
    await t.settle()
    await t.commit()
    const changelog = t.broker.records('big-commit-values-changelog')
    expect(new Set(changelog.map((r) => r.key!.toString())).size).toBe(N)
    expect(await table.get('k299999', { partition: 1 })).toBe(299_999)
  })

  it('get returns the default for a missing key without storing it', async () => {
    const { app, commands, kv, probes } = kvApp()
    const t = await start(app)
    await t.send(commands, { value: { op: 'probe', key: 'ghost' } })
    await t.settle()
    expect(probes).toEqual([{ key: 'ghost', value: -1, has: false }])
    expect(await kv.has('ghost')).toBe(false)
    expect(await entries(kv.entries())).toEqual([])
    await t.commit()
    expect(t.records('kv-kv-changelog')).toHaveLength(0)
  })

  it('set, get, has, update, delete and entries', async () => {
    const { app, commands, kv, probes } = kvApp()
    const t = await start(app)
    const send = (c: Command) => t.send(commands, { value: c })
    await send({ op: 'set', key: 'a', value: 1 })
    await send({ op: 'set', key: 'b', value: 2 })
    await send({ op: 'add', key: 'b', by: 10 })
    await send({ op: 'add', key: 'c', by: 5 })
    await send({ op: 'probe', key: 'b' })
    await send({ op: 'delete', key: 'a' })
    await send({ op: 'probe', key: 'a' })
    await t.settle()
    expect(probes).toEqual([
      { key: 'b', value: 12, has: true },
      { key: 'a', value: -1, has: false },
    ])
    expect(await kv.get('b')).toBe(12)
    expect(await kv.get('c')).toBe(5)
    expect(await kv.has('a')).toBe(false)
    expect(await entries(kv.entries())).toEqual([
      ['b', 12],
      ['c', 5],
    ])
    // Still the same after the writes moved from pending to the store.
    await t.commit()
    expect(await entries(kv.entries())).toEqual([
      ['b', 12],
      ['c', 5],
    ])
    expect(await entries(kv.entries({ partition: 0 }))).toHaveLength(2)
  })

  it('a table without default returns undefined for a missing key', async () => {
    const app = quietApp('no-default')
    const table = app.table<string, string>('plain', { partitions: 1, usePartitioner: true })
    await start(app)
    expect(await table.get('nothing')).toBeUndefined()
    expect(() => table.set('k', undefined as unknown as string)).toThrow(/cannot set undefined/)
  })

  it('json keys work for non-string keys', async () => {
    const app = quietApp('json-keys')
    const table = app.table<[number, number], string>('grid', {
      key: json(),
      partitions: 2,
      usePartitioner: true,
    })
    await start(app)
    table.set([1, 2], 'x')
    expect(await table.get([1, 2])).toBe('x')
    expect(await table.has([2, 1])).toBe(false)
    expect((await entries(table.entries())).map(([k]) => k)).toEqual([[1, 2]])
  })
})

describe('writes outside an event', () => {
  it('throw NoEventContextError saying to pass { partition } or usePartitioner', async () => {
    const { app, kv } = kvApp()
    await start(app)
    let err: unknown
    try {
      kv.set('a', 1)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(NoEventContextError)
    expect(err).toMatchObject({ code: 'NO_EVENT_CONTEXT' })
    expect((err as Error).message).toMatch(/table kv: set outside of an event/)
    expect((err as Error).message).toMatch(/pass \{ partition \}/)
    expect((err as Error).message).toMatch(/usePartitioner: true/)
    expect(() => kv.delete('a')).toThrow(NoEventContextError)
    // update fails before running fn.
    let ran = false
    await expect(
      kv.update('a', (v) => {
        ran = true
        return v
      }),
    ).rejects.toThrow(NoEventContextError)
    expect(ran).toBe(false)
  })

  it('{ partition } writes there', async () => {
    const app = quietApp('by-partition', { topicPartitions: 4 })
    const input = app.topic<string, string>('input', { partitions: 4 })
    const table = app.table<string, number>('t', { partitions: 4 })
    app.agent(input, async (stream) => {
      for await (const _ of stream) {
        // nothing
      }
    })
    const t = await start(app)
    table.set('k', 7, { partition: 3 })
    expect(await table.get('k', { partition: 3 })).toBe(7)
    expect(await table.has('k', { partition: 2 })).toBe(false)
    expect(() => table.set('k', 1, { partition: 4 })).toThrow(MephistoError)
    expect(() => table.set('k', 1, { partition: 4 })).toThrow(/partition 4 is out of range/)
    await t.commit()
    const changelog = t.records('by-partition-t-changelog')
    expect(changelog.map((r) => [r.partition, r.key?.toString(), r.value?.toString()])).toEqual([
      [3, 'k', '7'],
    ])
  })

  it('usePartitioner hashes the key to its partition, as reads do', async () => {
    const app = quietApp('hashed')
    const table = app.table<string, number>('t', { partitions: 8, usePartitioner: true })
    const t = await start(app)
    for (let i = 0; i < 20; i++) table.set(`key-${i}`, i)
    for (let i = 0; i < 20; i++) expect(await table.get(`key-${i}`)).toBe(i)
    await t.commit()
    const used = new Set(t.records('hashed-t-changelog').map((r) => r.partition))
    expect(used.size).toBeGreaterThan(1)
  })
})

describe('changelog', () => {
  it('receives the writes at commit, one record per key per commit', async () => {
    const h = hitCounter({ commitIntervalMs: 1000 })
    const t = await start(h.app)
    for (let i = 0; i < 5; i++)
      await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 30, timestamp: 0 } })
    await t.send(h.hits, { key: 'u2', value: { userId: 'u2', hits: 30, timestamp: 0 } })
    await t.settle()
    expect(await h.counts.get('u1')).toBe(5)
    expect(t.records('hit-counter-major-count-changelog')).toHaveLength(0)
    await t.advance(1000)
    const changelog = t.records('hit-counter-major-count-changelog')
    expect(changelog.map((r) => [r.key?.toString(), r.value?.toString()]).sort()).toEqual([
      ['u1', '5'],
      ['u2', '1'],
    ])
  })

  it('a delete becomes a tombstone', async () => {
    const { app, commands } = kvApp()
    const t = await start(app)
    await t.send(commands, { value: { op: 'set', key: 'a', value: 1 } })
    await t.settle()
    await t.commit()
    await t.send(commands, { value: { op: 'delete', key: 'a' } })
    await t.settle()
    await t.commit()
    expect(t.records('kv-kv-changelog').map((r) => r.value?.toString() ?? null)).toEqual(['1', null])
  })

  it('the changelog topic is compacted and has the table partitions', async () => {
    const app = quietApp('spec', { topicPartitions: 3 })
    app.table('t')
    const t = await start(app)
    expect(t.broker.topicSpec('spec-t-changelog')).toMatchObject({ partitions: 3, compacted: true })
  })
})

describe('recovery', () => {
  it('after crash and restart the table is recovered from the changelog', async () => {
    const { app, commands, kv } = kvApp()
    const t = await start(app)
    for (let i = 0; i < 10; i++) await t.send(commands, { value: { op: 'set', key: `k${i}`, value: i } })
    await t.send(commands, { value: { op: 'delete', key: 'k3' } })
    await t.settle()
    await t.commit()
    await t.crash()
    await t.restart()
    for (let i = 0; i < 10; i++) expect(await kv.get(`k${i}`)).toBe(i === 3 ? -1 : i)
    expect(await kv.has('k3')).toBe(false)
  })

  it('writes after the last commit are lost with their offsets and redone on redelivery', async () => {
    const app = quietApp('direct', { commitIntervalMs: 60_000 })
    const clicks = app.topic<string, string>('clicks', { partitions: 1 })
    const counts = app.table<string, number>('counts', { default: () => 0, partitions: 1 })
    app.agent(clicks, async (stream) => {
      for await (const user of stream) counts.set(user, (await counts.get(user)) + 1)
    })
    const t = await start(app)
    await t.send(clicks, { key: 'u1', value: 'u1' })
    await t.send(clicks, { key: 'u1', value: 'u1' })
    await t.settle()
    await t.commit()
    await t.send(clicks, { key: 'u1', value: 'u1' })
    await t.send(clicks, { key: 'u2', value: 'u2' })
    await t.settle()
    expect(await counts.get('u1')).toBe(3)
    await t.crash()
    await t.restart()
    // The table and the input offsets move together: the lost writes are redone exactly once.
    expect(await counts.get('u1')).toBe(3)
    expect(await counts.get('u2')).toBe(1)
  })

  it('a stopped app commits its table and restores it on start', async () => {
    const h = hitCounter()
    const t = await start(h.app)
    await t.send(h.hits, { key: 'u1', value: { userId: 'u1', hits: 50, timestamp: 0 } })
    await t.settle()
    await t.stop()
    await t.restart()
    running.push(t)
    expect(await h.counts.get('u1')).toBe(1)
  })

  it('a table and its existing changelog must agree on partitions', async () => {
    const first = quietApp('copart')
    first.table('t', { partitions: 2 })
    const t1 = await start(first)
    await t1.stop()
    const second = quietApp('copart')
    second.table('t', { partitions: 3 })
    const err = await TestApp.start(second, { broker: t1.broker }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'CO_PARTITIONING' })
    expect((err as Error).message).toMatch(
      /declared with 3 partition\(s\) but its changelog copart-t-changelog has 2/,
    )
  })
})
