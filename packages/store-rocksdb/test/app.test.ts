import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App, memoryStore, type Store } from '@mephisto/core'
import { TestApp } from '@mephisto/testkit'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { rocksdbStore } from '../src/index.js'

const root = mkdtempSync(join(tmpdir(), 'mephisto-rocksdb-app-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const running: TestApp[] = []
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

/** A hit counter whose table lives in `store`, with a sensor counting changelog records replayed. */
function counter(store: Store) {
  const app = new App({ id: 'rocks-counter', logger: 'silent', store })
  const hits = app.topic<string, number>('hits', { partitions: 2 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 2 })
  app.agent(hits, async (stream) => {
    for await (const event of stream.events()) {
      const key = event.key as string
      counts.set(key, (await counts.get(key)) + event.value)
    }
  })
  const replayed = new Map<number, number>()
  app.sensors.add({
    onRecoveryProgress(table, partition, done) {
      if (table === 'counts') replayed.set(partition, done)
    },
  })
  const replayedTotal = (): number => {
    const n = [...replayed.values()].reduce((a, b) => a + b, 0)
    replayed.clear()
    return n
  }
  return { app, hits, counts, replayedTotal }
}

async function start(app: App): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}

async function sendHits(t: TestApp, topic: Parameters<TestApp['send']>[0], n: number): Promise<void> {
  for (let i = 0; i < n; i++) await t.send(topic as never, { key: `user-${i % 10}`, value: 1 })
  await t.settle()
  await t.advance(3_000) // past commitIntervalMs: flush the changelog and apply it to the store
  await t.settle()
}

describe('an App on the RocksDB store', () => {
  it('recovers a restarted table from disk, replaying only the changelog tail', async () => {
    const { app, hits, counts, replayedTotal } = counter(rocksdbStore({ path: join(root, 'a') }))
    const t = await start(app)
    replayedTotal()
    await sendHits(t, hits, 100)
    const changelog = 'rocks-counter-counts-changelog'
    const written = t.records(changelog).length
    expect(written).toBeGreaterThan(0)

    // Everything the worker wrote was applied to the store with its offset: nothing to replay.
    await t.restart()
    expect(replayedTotal()).toBe(0)
    expect(await t.table(counts).get('user-3')).toBe(10)

    // Records another worker appended to the changelog (e.g. while it owned the partitions):
    // exactly those are replayed on the next start.
    const p3 = t.records(changelog).find((r) => r.key?.toString() === 'user-3')!.partition
    const tail = [
      { key: 'user-3', value: '1000', partition: p3 },
      { key: 'user-3', value: '1001', partition: p3 },
      { key: 'newcomer', value: '7', partition: 1 },
    ]
    for (const r of tail) await t.sendRaw(changelog, r)
    await t.restart()
    expect(replayedTotal()).toBe(tail.length)
    expect(await t.table(counts).get('user-3')).toBe(1001)
    expect(await t.table(counts).get('newcomer', { partition: 1 })).toBe(7)

    // And the counting goes on from the recovered values.
    await sendHits(t, hits, 10)
    expect(await t.table(counts).get('user-3')).toBe(1002)
    expect(replayedTotal()).toBe(0)
  })

  it('where the memory store replays the whole changelog on every start', async () => {
    const { app, hits, replayedTotal } = counter(memoryStore())
    const t = await start(app)
    await sendHits(t, hits, 100)
    const written = t.records('rocks-counter-counts-changelog').length
    replayedTotal()
    await t.restart()
    expect(replayedTotal()).toBe(written)
  })

  it('crash then restart: counts from what was committed, nothing applied twice', async () => {
    const { app, hits, counts } = counter(rocksdbStore({ path: join(root, 'b') }))
    const t = await start(app)
    await sendHits(t, hits, 50)
    // Sent but never committed: the crash drops them, the restart processes them once.
    for (let i = 0; i < 20; i++) await t.send(hits, { key: 'user-1', value: 1 })
    await t.crash()
    await t.restart()
    await t.advance(3_000)
    await t.settle()
    expect(await t.table(counts).get('user-1')).toBe(25)
    expect(await t.table(counts).get('user-2')).toBe(5)
  })
})
