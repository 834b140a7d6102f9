// A replay of history through windows on a real broker, with real processes: a topic holds seven
// days of sensor readings (record timestamps, slightly out of order, ending two days ago), and a
// `mephisto worker` process reads it from the beginning under exactly-once, counting per sensor
// per hour in a tumbling window that closes by stream time (windowReplayFixture.ts). The worker is
// SIGKILLed in the middle of the replay and a second one finishes it. Every hour of every sensor
// must then be reported by onWindowClose with its exact count: each window present, one distinct
// value per window (a window closed after the last commit may be reported again, with the same
// value), none late; and the committed changelogs must hold every window closed, no over-count, and
// the stream time of the last reading.
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import type { KafkaTransport, RawRecord } from '../../src/index.js'
import type { Running } from '../cliProcess.js'
import { cliMain, getJson, start } from '../cliProcess.js'
import { seededRandom } from '../helpers.js'
import { describeKafka, kafkaBrokers, testTransport, uniqueName } from './kafka.js'
import type { ClosedWindow } from './windowReplayFixture.js'

const appModule = fileURLToPath(new URL('./windowReplayFixture.ts', import.meta.url))
const HOUR = 3_600_000
const DAY = 24 * HOUR
const EVENTS = 40_000
/** sensor-0 … sensor-7 hash two to each of the 4 partitions. */
const SENSORS = Array.from({ length: 8 }, (_, i) => `sensor-${i}`)
const PARTITIONS = [0, 1, 2, 3]
/** Readings come up to this much out of order: well inside the grace (one window, 1 h). */
const JITTER = 20 * 60_000

const created: string[] = []
let admin: KafkaTransport | undefined

afterAll(async () => {
  if (!admin) return
  const all = await admin.admin.listTopics()
  await admin.admin.deleteTopics(all.filter((name) => created.some((id) => name.startsWith(`${id}-`))))
  await admin.close()
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0)
const windowId = (sensor: string, start: number): string => `${sensor} ${new Date(start).toISOString()}`

/** Polls `fn` until `ok`; fails at `timeoutMs`, or at once when `worker` exits, with its output. */
async function until<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
  worker: Running,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    const exited = worker.child.exitCode !== null || worker.child.signalCode !== null
    if (exited || Date.now() > deadline) {
      throw new Error(
        `${exited ? 'the worker exited' : 'timed out'} waiting for ${what}; last: ${JSON.stringify(v)}\n` +
          `worker stderr:\n${worker.stderr().slice(-4000)}`,
      )
    }
    await sleep(20)
  }
}

function startWorker(id: string, name: string): Running {
  return start(cliMain, ['-A', appModule, 'worker', '-l', 'warn'], {
    env: { KAFKA_BROKERS: kafkaBrokers(), WINDOW_REPLAY_ID: id, WINDOW_REPLAY_WORKER: name },
  })
}

/** Every record of a topic, as a read-committed reader sees it, in offset order per partition. */
async function readTopic(topic: string): Promise<RawRecord[]> {
  const ends = await admin!.admin.endOffsets(topic)
  const ranges = [...ends].map(([partition, to]) => ({ partition, from: 0, to })).filter((r) => r.to > 0)
  const records: RawRecord[] = []
  await admin!.read(topic, ranges, (batch) => void records.push(...batch))
  return records
}

/** The last value of each key of a changelog (null for a tombstone), parsed as JSON. */
function lastValues(records: RawRecord[]): Map<string, unknown> {
  const last = new Map<string, unknown>()
  for (const r of records)
    last.set(r.key!.toString('utf8'), r.value === null ? null : JSON.parse(r.value.toString('utf8')))
  return last
}

/** What onWindowClose reported, in the order a reader sees it. */
async function reportsOf(id: string): Promise<ClosedWindow[]> {
  return (await readTopic(`${id}-closed`)).map((r) => JSON.parse(r.value!.toString('utf8')) as ClosedWindow)
}

/**
 * Seven days of readings ending `end`, in time order but each up to JITTER late, then one reading
 * per partition two hours after `end` (key `tick`), which moves every partition's stream time past
 * the last hour's end plus its grace. Returns the count of each sensor's hour.
 */
async function produceHistory(topic: string, end: number): Promise<Map<string, number>> {
  const random = seededRandom(14)
  const begin = end - 7 * DAY
  const step = (7 * DAY - JITTER) / EVENTS
  const expected = new Map<string, number>()
  const producer = admin!.producer()
  try {
    for (let i = 0; i < EVENTS; i++) {
      const sensor = SENSORS[Math.floor(random() * SENSORS.length)]!
      const at = Math.floor(begin + i * step + random() * JITTER)
      const w = windowId(sensor, Math.floor(at / HOUR) * HOUR)
      expected.set(w, (expected.get(w) ?? 0) + 1)
      await producer.send({
        topic,
        key: Buffer.from(sensor),
        value: Buffer.from(JSON.stringify({ seq: i })),
        timestamp: at,
      })
    }
    for (const partition of PARTITIONS) {
      await producer.send({
        topic,
        partition,
        key: Buffer.from('tick'),
        value: Buffer.from(JSON.stringify({ seq: -1 })),
        timestamp: end + 2 * HOUR,
      })
    }
    await producer.flush()
  } finally {
    await producer.close()
  }
  return expected
}

describeKafka('a replay of seven days through hourly windows on Kafka', () => {
  it('a worker SIGKILLed mid-replay: after a restart every hour of every sensor is reported with its exact count', async () => {
    const started = Date.now()
    const id = uniqueName('window-replay')
    created.push(id)
    const topic = `${id}-readings`
    admin = admin ?? testTransport()
    await admin.connect()
    // Created by hand to keep the old records: the broker's default retention is 7 days.
    await admin.admin.ensureTopics([{ name: topic, partitions: 4, config: { 'retention.ms': '-1' } }])
    const end = Math.floor(Date.now() / DAY) * DAY - 2 * DAY
    const expected = await produceHistory(topic, end)
    const total = EVENTS + PARTITIONS.length
    const ends = await admin.admin.endOffsets(topic)
    expect(sum(ends.values())).toBe(total)
    expect([...ends.values()].every((n) => n > 1)).toBe(true)
    const committed = async (): Promise<number> => sum((await admin!.admin.groupOffsets(id, topic)).values())

    // The first worker replays from the beginning and is killed once a third is committed: the
    // restart must resume the windows and stream time of that commit and redo the rest.
    const first = startWorker(id, 'first')
    let atKill: number
    try {
      atKill = await until(
        'a third of the readings committed',
        committed,
        (n) => n >= total / 3,
        30_000,
        first,
      )
    } finally {
      first.child.kill('SIGKILL')
    }
    expect((await first.exited).signal).toBe('SIGKILL')
    // A commit the worker had sent may still complete: read what stayed committed.
    await sleep(500)
    const afterKill = await committed()
    expect(afterKill).toBeLessThan(total)
    const reportedByFirst = (await readTopic(`${id}-closed`)).length

    const second = startWorker(id, 'second')
    try {
      const [, url] = await second.waitFor(
        /ready: \S+ in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//,
        30_000,
      )
      await until('every reading committed', committed, (n) => n === total, 45_000, second)
      await until(
        'every window reported',
        async () => {
          const seen = new Set((await reportsOf(id)).map((c) => windowId(c.sensor, c.start)))
          return [...expected.keys()].filter((w) => !seen.has(w)).length
        },
        (missing) => missing === 0,
        15_000,
        second,
      )
      // Asked until it answers 200: the page reads the running worker's tables (503 NOT_READY while
      // there is none, as during an in-process restart).
      const { body: page } = await until(
        'the /replay page',
        () => getJson(`${url}/replay`),
        (r) => r.status === 200,
        10_000,
        second,
      )
      expect(page.lateEvents).toBe(0)
      expect(page.streamTime).toEqual(Object.fromEntries(PARTITIONS.map((p) => [p, end + 2 * HOUR])))
    } finally {
      if (second.child.exitCode === null) second.child.kill('SIGTERM')
    }
    const stopped = await second.exited
    expect(stopped.code, stopped.stderr).toBe(0)

    // What onWindowClose reported: every window, each with one value, the exact count.
    const reports = await reportsOf(id)
    const values = new Map<string, Set<number>>()
    for (const c of reports) {
      const w = windowId(c.sensor, c.start)
      values.set(w, (values.get(w) ?? new Set()).add(c.count))
    }
    expect([...values.keys()].sort()).toEqual([...expected.keys()].sort())
    const wrong = [...expected]
      .filter(([w, n]) => values.get(w)?.size !== 1 || !values.get(w)?.has(n))
      .map(([w, n]) => `${w}: ${[...(values.get(w) ?? [])].join(' / ')} (want ${n})`)
    expect(wrong).toEqual([])
    // The committed table: every sensor's hour closed (its last changelog record a tombstone, or
    // none), no value above the final count; the tick's hour still open, with its one reading.
    const changelog = await readTopic(`${id}-per-hour-changelog`)
    const table = lastValues(changelog)
    const open: string[] = []
    const over: string[] = []
    for (const r of changelog) {
      const [sensor, start] = r.key!.toString('utf8').split('\u0001') as [string, string]
      if (sensor === 'tick' || r.value === null) continue
      const w = windowId(sensor, Number(start))
      const n = JSON.parse(r.value.toString('utf8')) as number
      if (n > (expected.get(w) ?? 0)) over.push(`${w}: ${n} (want ${expected.get(w)})`)
    }
    for (const [k, v] of table) if (!k.startsWith('tick\u0001') && v !== null) open.push(k)
    expect(over).toEqual([])
    expect(open).toEqual([])
    expect(table.get(`tick\u0001${end + 2 * HOUR}`)).toBe(1)
    const time = lastValues(await readTopic(`${id}-per-hour-window-time-changelog`))
    for (const p of PARTITIONS)
      expect(time.get(String(p)), `partition ${p}`).toMatchObject({ streamTime: end + 2 * HOUR })

    process.stderr.write(
      `[window replay] ${EVENTS} readings over 7 days, ${expected.size} windows; killed at ${atKill}/${total} ` +
        `committed (${afterKill} after the kill), ${reportedByFirst} windows reported by then; ` +
        `${reports.length - expected.size} reported again after the restart; ${Date.now() - started} ms\n`,
    )
  }, 90_000)
})
