// `mephisto worker --workers 2` on a real broker: one command, two worker processes in one
// consumer group. They split the partitions of a 4-partition topic and count every event once;
// a worker SIGKILLed from outside is restarted by the supervisor and the group takes it back
// (the partitions split again, later events counted exactly); SIGTERM to the supervisor stops
// both cleanly with exit 0.
import { expect, it } from 'vitest'
import type { Running } from '../cliProcess.js'
import { cliMain, fixture, getJson, start } from '../cliProcess.js'
import {
  describeKafka,
  kafkaBrokers,
  testTransport,
  topicsDeletedAfterAll,
  uniqueName,
  until as untilReady,
} from './kafka.js'

const appModule = fixture('poolCounter.ts')
const PARTITIONS = [0, 1, 2, 3]
const USERS = 40
const created = topicsDeletedAfterAll()

const _sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0)

const until = <T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000) =>
  untilReady(what, fn, ok, timeoutMs)

/** Each worker's latest web address and pid, from its `[w<i>] ready in ... (pid n), web <url>/` lines. */
function workersOf(pool: Running): Map<number, { pid: number; url: string }> {
  const latest = new Map<number, { pid: number; url: string }>()
  for (const m of pool.stdout().matchAll(/^\[w(\d+)\] ready in [\d.]+ s \(pid (\d+)\), web (\S+)\/$/gm))
    latest.set(Number(m[1]), { pid: Number(m[2]), url: m[3]! })
  return latest
}

interface Counts {
  owned: number[]
  counts: Record<string, number>
}

async function countsOfAll(pool: Running): Promise<Counts[]> {
  const workers = [...workersOf(pool).values()]
  return Promise.all(
    workers.map(async (w) => {
      const { status, body } = await getJson(`${w.url}/counts`)
      if (status !== 200) throw new Error(`${w.url}/counts answered ${status}: ${JSON.stringify(body)}`)
      return body as Counts
    }),
  )
}

const split = (cs: Counts[]): boolean =>
  cs.length === 2 &&
  cs.every((c) => c.owned.length > 0) &&
  cs
    .flatMap((c) => c.owned)
    .sort()
    .join() === PARTITIONS.join()

async function produce(topic: string, from: number, n: number): Promise<void> {
  const t = testTransport()
  await t.connect()
  const producer = t.producer()
  try {
    for (let i = from; i < from + n; i++)
      await producer.send({ topic, key: Buffer.from(`user-${i % USERS}`), value: Buffer.from(String(i)) })
    await producer.flush()
  } finally {
    await producer.close()
    await t.close()
  }
}

async function committedAll(id: string, topic: string): Promise<boolean> {
  const t = testTransport()
  await t.connect()
  try {
    const [ends, committed] = await Promise.all([t.admin.endOffsets(topic), t.admin.groupOffsets(id, topic)])
    return [...ends].every(([p, end]) => committed.get(p) === end)
  } finally {
    await t.close()
  }
}

describeKafka('mephisto worker --workers 2 on Kafka', () => {
  it('splits the partitions, gets a killed worker back into the group, and stops both with exit 0', async () => {
    const id = uniqueName('pool')
    created.push(id)
    const topic = `${id}-events`
    const pool = start(
      cliMain,
      ['-A', appModule, 'worker', '--workers', '2', '--web-port', '0', '-l', 'warn'],
      {
        env: { KAFKA_BROKERS: kafkaBrokers(), POOL_ID: id },
      },
    )
    try {
      await pool.waitFor(
        new RegExp(`^ready: ${id} in [\\d.]+ s, web \\S+ \\(w0\\), \\S+ \\(w1\\)$`, 'm'),
        90_000,
      )
      const first = workersOf(pool)
      expect([...first.keys()].sort()).toEqual([0, 1])

      // One group: each worker owns some of the 4 partitions, none owned twice.
      await until('the partitions split between both workers', () => countsOfAll(pool), split)
      await produce(topic, 0, 2_000)
      const counted = await until(
        'every event counted and committed',
        async () => ({ cs: await countsOfAll(pool), committed: await committedAll(id, topic) }),
        ({ cs, committed }) => committed && sum(cs.flatMap((c) => Object.values(c.counts))) === 2_000,
      )
      expect(counted.cs.map((c) => sum(Object.values(c.counts))).every((n) => n > 0)).toBe(true)

      // SIGKILL worker 1: the supervisor restarts it and the group takes it back.
      const victim = first.get(1)!
      process.kill(victim.pid, 'SIGKILL')
      await until(
        'worker 1 restarted',
        async () => workersOf(pool).get(1),
        (w) => w !== undefined && w.pid !== victim.pid,
      )
      expect(pool.stderr()).toContain(
        `worker 1 (pid ${victim.pid}) died: killed by SIGKILL; restarting it in 250 ms`,
      )
      await until('the partitions split again', () => countsOfAll(pool), split, 90_000)

      await produce(topic, 2_000, 2_000)
      const after = await until(
        'the later events counted',
        () => countsOfAll(pool),
        (cs) => split(cs) && sum(cs.flatMap((c) => Object.values(c.counts))) >= 4_000,
      )
      // Nothing was in flight at the kill: every count is exact, 100 events per user.
      const all = Object.assign({}, ...after.map((c) => c.counts)) as Record<string, number>
      expect(Object.keys(all)).toHaveLength(USERS)
      expect(new Set(Object.values(all))).toEqual(new Set([4_000 / USERS]))

      const pids = [...workersOf(pool).values()].map((w) => w.pid)
      pool.child.kill('SIGTERM')
      const done = await pool.exited
      expect(done.code).toBe(0)
      expect(done.stdout).toContain('[w0] stopped (SIGTERM)')
      expect(done.stdout).toContain('[w1] stopped (SIGTERM)')
      expect(done.stdout).toMatch(new RegExp(`\\nstopped: ${id} \\(SIGTERM\\)\\n$`))
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
    } finally {
      pool.child.kill('SIGKILL')
      for (const w of workersOf(pool).values()) {
        try {
          process.kill(w.pid, 'SIGKILL')
        } catch {
          // Already gone.
        }
      }
    }
  }, 300_000)
})
