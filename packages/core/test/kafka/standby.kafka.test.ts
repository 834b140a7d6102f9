// Standby replicas on a real broker, with real processes: two `mephisto worker` processes of one
// group count events per key into a 4-partition table with `standbyReplicas: 1`; one of them is
// SIGKILLed while events flow. The survivor takes over the dead worker's partitions with every
// count exact under the at-least-once bound, and replays no more of their changelogs than its
// standby copy lacked. The control run, without standby replicas, replays those changelogs whole.
import { expect, it } from 'vitest'
import type { RawRecord } from '../../src/index.js'
import type { Running } from '../cliProcess.js'
import { cliMain, fixture, getJson, start } from '../cliProcess.js'
import {
  describeKafka,
  kafkaBrokers,
  testTransport,
  topicsDeletedAfterAll,
  uniqueName,
  until,
} from './kafka.js'

const appModule = fixture('standbyCounter.ts')
const PARTITIONS = [0, 1, 2, 3]
const USERS = 8_000
const created = topicsDeletedAfterAll()

interface Worker {
  name: string
  run: Running
  url: string
}

async function startWorker(name: string, id: string, standbyReplicas: number): Promise<Worker> {
  const run = start(cliMain, ['-A', appModule, 'worker', '-l', 'warn'], {
    env: { KAFKA_BROKERS: kafkaBrokers(), STANDBY_ID: id, STANDBY_REPLICAS: String(standbyReplicas) },
  })
  const [, url] = await run.waitFor(/ready: \S+ in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//, 90_000)
  return { name, run, url: url! }
}

interface Counts {
  owned: number[]
  counts: Record<string, number>
}

const countsOf = async (w: Worker): Promise<Counts> => (await getJson(`${w.url}/counts`)).body
const standbyOf = async (w: Worker): Promise<{ partition: number; owned: boolean; applied: number }[]> =>
  (await getJson(`${w.url}/standby`)).body.partitions

/** Replayed records per table partition, from the worker's /stats `recovery` (table `counts`). */
async function recoveryOf(w: Worker): Promise<Map<number, { done: number; total: number }>> {
  const stats = (await getJson(`${w.url}/stats`)).body
  const result = new Map<number, { done: number; total: number }>()
  for (const r of stats.recovery.partitions as {
    table: string
    partition: number
    done: number
    total: number
  }[])
    if (r.table === 'counts') result.set(r.partition, { done: r.done, total: r.total })
  return result
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0)

/** Sends `n` events keyed `user-<i % USERS>`, `perChunk` at a time with a flush (and a pause) after each. */
async function produce(
  topic: string,
  from: number,
  n: number,
  perChunk: number,
  pauseMs: number,
): Promise<void> {
  const t = testTransport()
  await t.connect()
  const producer = t.producer()
  try {
    for (let i = from; i < from + n; i += perChunk) {
      for (let j = i; j < Math.min(i + perChunk, from + n); j++) {
        await producer.send({ topic, key: Buffer.from(`user-${j % USERS}`), value: Buffer.from(String(j)) })
      }
      await producer.flush()
      if (pauseMs > 0) await sleep(pauseMs)
    }
  } finally {
    await producer.close()
    await t.close()
  }
}

/** Every record of a topic, read from the broker. */
async function readTopic(topic: string): Promise<RawRecord[]> {
  const t = testTransport()
  await t.connect()
  try {
    const ends = await t.admin.endOffsets(topic)
    const ranges = [...ends].map(([partition, to]) => ({ partition, from: 0, to })).filter((r) => r.to > 0)
    const records: RawRecord[] = []
    await t.read(topic, ranges, (batch) => void records.push(...batch))
    return records
  } finally {
    await t.close()
  }
}

async function admin<T>(fn: (a: ReturnType<typeof testTransport>['admin']) => Promise<T>): Promise<T> {
  const t = testTransport()
  await t.connect()
  try {
    return await fn(t.admin)
  } finally {
    await t.close()
  }
}

interface Outcome {
  victimPartitions: number[]
  changelogRecords: number
  standbyLag: number
  replayed: number
  overCount: number
  bound: number
  takeoverMs: number
}

/**
 * Two workers, 24,000 events, all counted and committed (and, with standby replicas, copied);
 * then 6,000 more at about 3,000/s, and the owner of table partition 0 is SIGKILLed a second in.
 */
async function failover(standbyReplicas: number): Promise<Outcome> {
  const id = uniqueName(standbyReplicas > 0 ? 'standby' : 'standby-ctl')
  created.push(id)
  const topic = `${id}-events`
  const changelog = `${id}-counts-changelog`
  const label = `[standby replicas=${standbyReplicas}]`
  const workers = await Promise.all([
    startWorker('a', id, standbyReplicas),
    startWorker('b', id, standbyReplicas),
  ])
  try {
    // The group settles with each worker owning some of the table partitions.
    await until(
      'the partitions split between both workers',
      () => Promise.all(workers.map(countsOf)),
      ([a, b]) =>
        a!.owned.length > 0 &&
        b!.owned.length > 0 &&
        [...a!.owned, ...b!.owned].sort().join() === PARTITIONS.join(),
    )

    await produce(topic, 0, 24_000, 2_000, 0)
    // Both work, every event is counted and committed, and each worker's standby copy of the other's
    // partitions has applied the whole changelog.
    const settled = await until(
      'phase 1 counted and committed',
      async () => {
        const [cs, ends, committed] = await Promise.all([
          Promise.all(workers.map(countsOf)),
          admin((a) => a.endOffsets(topic)),
          admin((a) => a.groupOffsets(id, topic)),
        ])
        return { cs, ends: [...ends], committed: [...committed] }
      },
      ({ cs, ends, committed }) =>
        sum(cs.flatMap((c) => Object.values(c.counts))) === 24_000 &&
        ends.every(([p, end]) => committed.find(([q]) => q === p)?.[1] === end),
    )
    const perWorker = settled.cs.map((c) => sum(Object.values(c.counts)))
    expect(perWorker.every((n) => n > 0)).toBe(true)
    if (standbyReplicas > 0) {
      await until(
        'the standby copies caught up',
        async () => {
          const ends = await admin((a) => a.endOffsets(changelog))
          return { ends: [...ends], standby: await Promise.all(workers.map(standbyOf)) }
        },
        ({ ends, standby }) =>
          standby.every((parts) =>
            parts.every(
              (s) => s.owned || s.applied === (ends.find(([p]) => p === s.partition)?.[1] ?? 0) - 1,
            ),
          ),
      )
    }

    // The victim: the worker whose /tables says it owns table partition 0.
    const owned = async (w: Worker): Promise<number[]> => (await getJson(`${w.url}/tables/counts`)).body.owned
    const [victim, survivor] = (await owned(workers[0]!)).includes(0) ? workers : [workers[1]!, workers[0]!]
    const victimPartitions = await owned(victim!)
    expect(victimPartitions.length).toBeGreaterThan(0)
    expect(victimPartitions.length).toBeLessThan(PARTITIONS.length)
    const recoveryBefore = await recoveryOf(survivor!)

    // Phase 2: events keep coming; the owner of partition 0 dies about a second in.
    const producing = produce(topic, 24_000, 6_000, 300, 100)
    await sleep(1_000)
    const standby = await standbyOf(survivor!)
    const committed = await admin((a) => a.groupOffsets(id, topic))
    victim!.run.child.kill('SIGKILL')
    const killed = Date.now()
    const died = await victim!.run.exited
    expect(died.signal).toBe('SIGKILL')
    // Nobody writes to the victim's changelog partitions until the survivor owns them, which takes
    // a session timeout: these are their ends at the kill.
    const [clEnds, clStarts] = await admin((a) =>
      Promise.all([a.endOffsets(changelog), a.startOffsets(changelog)]),
    )
    await producing

    const records = await readTopic(topic)
    expect(records).toHaveLength(30_000)
    const want = new Map<string, number>()
    // At-least-once: an event at or after its partition's committed offset before the kill may be
    // counted twice (its changelog write flushed, its offset not committed yet). Nothing before it
    // is ever delivered again: committed offsets only move forward.
    const redeliverable = new Map<string, number>()
    for (const r of records) {
      const user = r.key!.toString()
      want.set(user, (want.get(user) ?? 0) + 1)
      if (r.offset >= (committed.get(r.partition) ?? 0))
        redeliverable.set(user, (redeliverable.get(user) ?? 0) + 1)
    }

    const got = await until(
      'the survivor owning every partition, with every count',
      () => countsOf(survivor!),
      (c) => c.owned.length === PARTITIONS.length && sum(Object.values(c.counts)) >= 30_000,
      45_000,
    )
    const takeoverMs = Date.now() - killed
    // Anything counted twice would show up now or a moment later.
    await sleep(1_500)
    const final = (await countsOf(survivor!)).counts
    expect(sum(Object.values(final))).toBeGreaterThanOrEqual(sum(Object.values(got.counts)))
    let overCount = 0
    const wrong: string[] = []
    for (const [user, n] of want) {
      const v = final[user] ?? 0
      if (v < n || v > n + (redeliverable.get(user) ?? 0)) wrong.push(`${user}: ${v} (want ${n})`)
      overCount += v - n
    }
    expect(wrong).toEqual([])
    expect(Object.keys(final).length).toBe(want.size)
    const bound = sum(redeliverable.values())

    // Replayed on takeover: the recovery the survivor reported for the victim's partitions since
    // before the kill (none reported means none replayed). The standby lag at the kill: what the
    // changelog held beyond what the survivor's copy had applied.
    const recoveryAfter = await recoveryOf(survivor!)
    let replayed = 0
    let standbyLag = 0
    let changelogRecords = 0
    for (const p of victimPartitions) {
      const after = recoveryAfter.get(p)
      const before = recoveryBefore.get(p)
      if (after && (after.total !== before?.total || after.done !== before?.done)) {
        expect(after.done).toBe(after.total)
        replayed += after.done
      }
      const end = clEnds.get(p) ?? 0
      changelogRecords += end - (clStarts.get(p) ?? 0)
      standbyLag += end - ((standby.find((s) => s.partition === p)?.applied ?? -1) + 1)
    }
    process.stderr.write(
      `${label} victim owned table partitions [${victimPartitions.join(', ')}]; their changelog at the kill: ` +
        `${changelogRecords} records; survivor's standby lag at the kill: ${standbyLag}; replayed on takeover: ` +
        `${replayed}; takeover + catch-up: ${takeoverMs} ms; over-count: ${overCount} (bound: ${bound} events ` +
        `at or after the committed offsets before the kill); events per worker before the kill: ${perWorker.join(' / ')}\n`,
    )
    return { victimPartitions, changelogRecords, standbyLag, replayed, overCount, bound, takeoverMs }
  } finally {
    for (const w of workers)
      if (w.run.child.exitCode === null && w.run.child.signalCode === null) w.run.child.kill('SIGTERM')
    for (const w of workers) {
      const timer = setTimeout(() => w.run.child.kill('SIGKILL'), 20_000)
      const done = await w.run.exited
      clearTimeout(timer)
      if (done.signal !== 'SIGKILL') expect(done.code, done.stderr).toBe(0)
    }
  }
}

describeKafka('standby replicas across worker processes on Kafka', () => {
  it('a SIGKILLed worker: the survivor takes over with exact counts, replaying only its standby lag', async () => {
    const o = await failover(1)
    expect(o.changelogRecords).toBeGreaterThan(1_000)
    expect(o.replayed).toBeLessThanOrEqual(o.standbyLag)
    expect(o.replayed * 10).toBeLessThan(o.changelogRecords)
    expect(o.overCount).toBeLessThanOrEqual(o.bound)
  }, 120_000)

  it('control, without standby replicas: the survivor replays the whole changelog of what it takes over', async () => {
    const o = await failover(0)
    expect(o.changelogRecords).toBeGreaterThan(1_000)
    expect(o.replayed).toBe(o.changelogRecords)
    expect(o.overCount).toBeLessThanOrEqual(o.bound)
  }, 120_000)
})
