// One leader, always, on a real broker (issue 15, item 4): two `mephisto worker` processes of an
// app with no agents (test/kafka/leaderFixture.ts). Exactly one of them runs the onLeader timer
// and the onLeader task; when it is SIGKILLed, the other takes over both, alone.
import { expect, it } from 'vitest'
import type { Running } from '../cliProcess.js'
import { cliMain, getJson, start } from '../cliProcess.js'
import {
  describeKafka,
  kafkaBrokers,
  testTransport,
  topicsDeletedAfterAll,
  uniqueName,
  until,
} from './kafka.js'

const appModule = new URL('./leaderFixture.ts', import.meta.url).pathname
const created = topicsDeletedAfterAll()
const TICK_MS = 200

interface Worker {
  run: Running
  id: string
}

interface Tick {
  key: 'tick' | 'task'
  worker: string
  at: number
}

async function startWorker(id: string): Promise<Worker> {
  const run = start(cliMain, ['-A', appModule, 'worker', '-l', 'warn'], {
    env: { KAFKA_BROKERS: kafkaBrokers(), LEADER_ID: id },
  })
  const [, url] = await run.waitFor(/ready: \S+ in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//, 90_000)
  return { run, id: (await getJson(`${url}/health`)).body.worker }
}

/** Every record of the ticks topic, in the order written. */
async function ticksOf(id: string): Promise<Tick[]> {
  const t = testTransport()
  await t.connect()
  try {
    const topic = `${id}-ticks`
    const to = (await t.admin.endOffsets(topic)).get(0) ?? 0
    const out: Tick[] = []
    if (to > 0) {
      await t.read(topic, [{ partition: 0, from: 0, to }], (records) => {
        for (const r of records)
          out.push({
            key: r.key!.toString() as Tick['key'],
            worker: JSON.parse(r.value!.toString()),
            at: r.timestamp,
          })
      })
    }
    return out
  } finally {
    await t.close()
  }
}

/** The workers whose ticks were written in the last `ms`, once at least `ms` of ticks exist. */
async function recentTickers(id: string, ms: number): Promise<{ workers: Set<string>; count: number }> {
  const ticks = (await ticksOf(id)).filter((t) => t.key === 'tick')
  const last = ticks.at(-1)?.at ?? 0
  if (ticks.length === 0 || last - ticks[0]!.at < ms) return { workers: new Set(), count: 0 }
  const recent = ticks.filter((t) => t.at > last - ms)
  return { workers: new Set(recent.map((t) => t.worker)), count: recent.length }
}

describeKafka('one leader on Kafka, for an app with no agents', () => {
  it('two workers: one runs the onLeader timer and task; SIGKILLed, the other takes both over', {
    timeout: 180_000,
  }, async () => {
    const id = uniqueName('leader')
    created.push(id)
    const workers = await Promise.all([startWorker(id), startWorker(id)])
    try {
      // Settled: 2 s of ticks from one worker only, about one per tick (not two workers' worth).
      const before = await until(
        'one worker ticking alone',
        () => recentTickers(id, 2_000),
        (r) => r.workers.size === 1,
        60_000,
      )
      expect(before.count).toBeLessThanOrEqual(2_000 / TICK_MS + 2)
      const leaderId = [...before.workers][0]!
      const leader = workers.find((w) => w.id === leaderId)!
      const other = workers.find((w) => w.id !== leaderId)!
      expect(leader, `ticks by ${leaderId}, workers ${workers.map((w) => w.id).join(', ')}`).toBeDefined()

      leader.run.child.kill('SIGKILL')
      await leader.run.exited
      const killedAt = Date.now()
      const after = await until(
        'the other worker ticking alone',
        () => recentTickers(id, 2_000),
        (r) => r.workers.size === 1 && r.workers.has(other.id),
        60_000,
      )
      expect(after.count).toBeLessThanOrEqual(2_000 / TICK_MS + 2)
      const all = await ticksOf(id)
      // The task ran once per leadership: last on the new leader, once there.
      const tasks = all.filter((t) => t.key === 'task').map((t) => t.worker)
      expect(tasks.at(-1)).toBe(other.id)
      expect(tasks.filter((w) => w === other.id)).toHaveLength(1)
      expect(tasks).toContain(leader.id)
      // Never two leaders at once: ticks change hands at the kill (and at most once while the
      // second worker joined), never back and forth.
      const tickers = all.filter((t) => t.key === 'tick').map((t) => t.worker)
      const handovers = tickers.filter((w, k) => k > 0 && w !== tickers[k - 1]).length
      expect(handovers, tickers.join(' ')).toBeLessThanOrEqual(2)
      const firstNew = all.find(
        (t, k) =>
          t.key === 'tick' && t.worker === other.id && k > all.findIndex((x) => x.worker === leader.id),
      )!.at
      process.stdout.write(
        `leader.kafka: the new leader ticked ${((firstNew - killedAt) / 1000).toFixed(1)} s after the kill\n`,
      )
    } finally {
      for (const w of workers)
        if (w.run.child.exitCode === null && w.run.child.signalCode === null) w.run.child.kill('SIGTERM')
      await Promise.all(workers.map((w) => w.run.exited))
    }
  })
})
