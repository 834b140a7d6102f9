// The CLI as an operator runs it against a real broker: the hit-counter worker started with
// `mephisto worker`, events from the producer app, counts read from the worker's web server,
// `send`, `agents`, `tables`, `dlq replay` and `reset`; then SIGTERM in the middle of a load and a
// restart, after which every count is exact (a clean stop commits everything it processed).
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import type { RawRecord } from '../../src/index.js'
import type { Running } from '../cliProcess.js'
import { cliMain, getJson, mephisto, repoDir, start } from '../cliProcess.js'
import { describeKafka, kafkaBrokers, testTransport, uniqueName } from './kafka.js'

const appModule = join(repoDir, 'apps/hit-counter-worker/src/app.ts')
const producerMain = join(repoDir, 'apps/hit-counter-producer/src/main.ts')

interface Names {
  id: string
  hits: string
  count: string
  dlq: string
  env: Record<string, string>
}

const created: Names[] = []

/** A hit counter with its own app id and topics, so runs against one broker never mix. */
function names(prefix: string): Names {
  const id = uniqueName(prefix)
  const hits = `${id}-hits`
  const count = `${id}-count`
  const n = {
    id,
    hits,
    count,
    dlq: `${id}-${hits}-dlq`,
    env: {
      KAFKA_BROKERS: kafkaBrokers(),
      HIT_COUNTER_ID: id,
      HIT_COUNTER_TOPIC: hits,
      HIT_COUNTER_COUNT_TOPIC: count,
      MEPHISTO_STORE: 'memory',
      MEPHISTO_MONITOR: 'none',
    },
  }
  created.push(n)
  return n
}

afterAll(async () => {
  if (created.length === 0) return
  const t = testTransport()
  await t.connect()
  const all = await t.admin.listTopics()
  await t.admin.deleteTopics(all.filter((name) => created.some((c) => name.startsWith(`${c.id}-`))))
  await t.close()
})

/** Starts `mephisto worker` on the hit counter and waits for its banner, readiness and /health. */
async function startWorker(n: Names): Promise<{ worker: Running; url: string }> {
  const worker = start(cliMain, ['-A', appModule, 'worker', '--web-port', '0', '-l', 'warn'], { env: n.env })
  await worker.waitFor(/┌─ tables/)
  expect(worker.stdout()).toMatch(new RegExp(`│ id\\s+│ ${n.id}\\s+│`))
  expect(worker.stdout()).toMatch(
    new RegExp(`│ broker\\s+│ kafka://${kafkaBrokers().replace(/[.]/g, '\\.')}\\s+│`),
  )
  const [, url] = await worker.waitFor(/ready: \S+ in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//, 90_000)
  const health = await getJson(`${url}/health`)
  expect(health.status).toBe(200)
  expect(health.body.ready).toBe(true)
  return { worker, url: url! }
}

async function produce(n: Names, args: string[]): Promise<void> {
  const p = start(
    producerMain,
    ['--broker', kafkaBrokers(), '--topic', n.hits, '--progress', 'lines', ...args],
    { env: n.env },
  )
  const done = await p.exited
  expect(done.code, done.stderr).toBe(0)
  expect(done.stderr).toBe('')
  expect(done.stdout).toMatch(/^done: \d+ events/m)
}

/** The end offset of each partition of a topic. */
async function endOffsets(topic: string): Promise<Map<number, number>> {
  const t = testTransport()
  await t.connect()
  try {
    return await t.admin.endOffsets(topic)
  } finally {
    await t.close()
  }
}

/** Every record of a topic (or those at or after `from` per partition), read from the broker. */
async function readTopic(topic: string, from?: Map<number, number>): Promise<RawRecord[]> {
  const t = testTransport()
  await t.connect()
  try {
    const [starts, ends] = await Promise.all([t.admin.startOffsets(topic), t.admin.endOffsets(topic)])
    const ranges = [...ends]
      .map(([partition, to]) => ({
        partition,
        from: Math.max(starts.get(partition) ?? 0, from?.get(partition) ?? 0),
        to,
      }))
      .filter((r) => r.to > r.from)
    const records: RawRecord[] = []
    await t.read(topic, ranges, (batch) => void records.push(...batch))
    return records
  } finally {
    await t.close()
  }
}

/**
 * What the hit counter must end with, worked out from what is on the hits topic (not from what the
 * producer says it sent): per user, the well-formed hits over 20; and the malformed records.
 */
function expectedFrom(records: RawRecord[]): { counts: Map<string, number>; malformed: RawRecord[] } {
  const counts = new Map<string, number>()
  const malformed: RawRecord[] = []
  for (const r of records) {
    let v: { userId?: unknown; hits?: unknown; timestamp?: unknown }
    try {
      v = JSON.parse(r.value!.toString('utf8'))
    } catch {
      malformed.push(r)
      continue
    }
    if (
      typeof v !== 'object' ||
      v === null ||
      typeof v.userId !== 'string' ||
      v.userId === '' ||
      typeof v.hits !== 'number' ||
      typeof v.timestamp !== 'number'
    ) {
      malformed.push(r)
      continue
    }
    if (v.hits > 20) counts.set(v.userId, (counts.get(v.userId) ?? 0) + 1)
  }
  return { counts, malformed }
}

/**
 * The worker's counts for these users, through GET /tables/major-count/:user. A worker may answer
 * 503 (no owner known yet) for a moment after it is ready, while the group settles its
 * assignment of topics created at start-up and the workers learn each other's routes; that reads
 * as no counts yet.
 */
async function countsOf(url: string, users: Iterable<string>): Promise<Map<string, number>> {
  const got = new Map<string, number>()
  for (const u of users) {
    const r = await getJson(`${url}/tables/major-count/${encodeURIComponent(u)}`)
    if (r.status === 503 || r.status === 421) return new Map()
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    if (r.body.value > 0) got.set(u, r.body.value)
  }
  return got
}

const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)

async function until<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last: ${JSON.stringify(v, (_k, x) => (x instanceof Map ? Object.fromEntries(x) : x))}`,
      )
    await new Promise((r) => setTimeout(r, 250))
  }
}

async function stopWorker(worker: Running): Promise<void> {
  worker.child.kill('SIGTERM')
  const done = await worker.exited
  expect(done.code, done.stderr).toBe(0)
  expect(done.stdout).toMatch(/stopped: \S+ \(SIGTERM\)/)
}

describeKafka('the mephisto CLI on Kafka', () => {
  it('runs the hit counter: producer counts via /tables, send, agents, tables, dlq replay, reset', async () => {
    const n = names('cli-hc')
    const { worker, url } = await startWorker(n)
    try {
      await produce(n, ['--count', '3000', '--users', '10', '--malformed', '0.03', '--seed', '7'])
      const { counts: want, malformed } = expectedFrom(await readTopic(n.hits))
      expect(malformed.length).toBeGreaterThan(20)
      const users = [...want.keys()]
      const got = await until(
        'the counts',
        () => countsOf(url, users),
        (g) => sum(g) >= sum(want),
      )
      expect(got).toEqual(want)

      // The listing commands read the module, not the broker.
      const agents = await mephisto(['-A', appModule, 'agents', '--json'], { env: n.env })
      expect(agents.code).toBe(0)
      expect(
        JSON.parse(agents.stdout).map((a: { name: string; source: string }) => `${a.name}<-${a.source}`),
      ).toEqual([`countHits<-${n.hits}`, `incrementCount<-${n.count}`])
      const tables = await mephisto(['-A', appModule, 'tables'], { env: n.env })
      expect(tables.code).toBe(0)
      expect(tables.stdout).toContain(`${n.id}-major-count-changelog`)

      // send: to the agent by name, three times; the worker counts them.
      const hit = JSON.stringify({ userId: 'cli-user', hits: 50, timestamp: Date.now() })
      const sent = await mephisto(
        ['-A', appModule, 'send', 'countHits', hit, '--key', 'cli-user', '--repeat', '3'],
        { env: n.env },
      )
      expect(sent.code, sent.stderr).toBe(0)
      expect(sent.stdout).toMatch(
        new RegExp(`^sent 3 messages to ${n.hits}: partition \\d+ \\(last offset \\d+\\)`),
      )
      await until(
        'cli-user counted',
        () => getJson(`${url}/tables/major-count/cli-user`),
        (r) => r.body.value === 3,
      )
      const bad = await mephisto(['-A', appModule, 'send', 'countHits', '{"userId": "x", "hits": "many"}'], {
        env: n.env,
      })
      expect(bad.code).toBe(2)

      // dlq replay: every dead letter goes back to the hits topic with its original bytes and
      // without the headers the dead-letter path added. They are still malformed, so the worker
      // dead-letters them again, and no count changes.
      await until(
        'the dead letters',
        async () => (await readTopic(n.dlq)).length,
        (len) => len === malformed.length,
      )
      const dlqRecords = await readTopic(n.dlq)
      expect(dlqRecords.every((r) => r.headers['mephisto-source-topic']?.toString() === n.hits)).toBe(true)
      const before = await endOffsets(n.hits)
      const replay = await mephisto(['-A', appModule, 'dlq', 'replay', n.dlq, '--json'], { env: n.env })
      expect(replay.code, replay.stderr).toBe(0)
      expect(JSON.parse(replay.stdout)).toEqual({
        dlq: n.dlq,
        replayed: malformed.length,
        skipped: 0,
        to: { [n.hits]: malformed.length },
      })
      const values = (rs: RawRecord[]): string[] =>
        rs.map((r) => `${r.key?.toString()}|${r.value?.toString()}`).sort()
      const newest = await readTopic(n.hits, before)
      expect(values(newest)).toEqual(values(malformed))
      expect(newest.every((r) => Object.keys(r.headers).every((h) => !h.startsWith('mephisto-')))).toBe(true)
      await until(
        'the replayed dead letters dead-lettered again',
        async () => (await readTopic(n.dlq)).length,
        (len) => len === 2 * malformed.length,
      )
      expect(await countsOf(url, users)).toEqual(want)
      const limited = await mephisto(['-A', appModule, 'dlq', 'replay', n.dlq, '--limit', '2'], {
        env: n.env,
      })
      expect(limited.stdout).toBe(`replayed 2 records from ${n.dlq} to ${n.hits} (2)\n`)
    } finally {
      await stopWorker(worker)
    }

    // reset --topics --yes deletes the changelogs: the state the next worker recovers is empty.
    const values = await mephisto(['-A', appModule, 'tables', '--values', 'major-count', '--json'], {
      env: n.env,
    })
    expect(values.code, values.stderr).toBe(0)
    expect(JSON.parse(values.stdout)['major-count']['cli-user']).toBe(3)
    const dry = await mephisto(['-A', appModule, 'reset', '--topics'], { env: n.env })
    expect(dry.code).toBe(2)
    expect(dry.stdout).toContain(`${n.id}-major-count-changelog`)
    const reset = await mephisto(['-A', appModule, 'reset', '--topics', '--yes'], { env: n.env })
    expect(reset.code, reset.stderr).toBe(0)
    expect(reset.stdout).toContain(`deleted 7 topic(s)`)
    for (const t of [
      `${n.id}-major-count-changelog`,
      `${n.id}-major-count-per-minute-changelog`,
      // The windowed table's stream time (tables/windowTime.ts).
      `${n.id}-major-count-per-minute-window-time-changelog`,
      n.count,
      `${n.id}-__leader`,
      `${n.id}-__routes`,
      `${n.id}-__replies`,
    ]) {
      expect(reset.stdout).toContain(`  ${t}\n`)
    }
    // Topic deletion completes on the broker in the background: wait for the changelogs to go.
    await until(
      'the changelogs deleted',
      async () =>
        JSON.parse(
          (await mephisto(['-A', appModule, 'tables', '--values', '--json'], { env: n.env })).stdout,
        ),
      (v) => JSON.stringify(v) === JSON.stringify({ 'major-count': {}, 'major-count-per-minute': {} }),
      30_000,
    )
  }, 240_000)

  it('SIGTERM during load, then a restart: no event is counted twice and none is lost', async () => {
    const n = names('cli-sigterm')
    const first = await startWorker(n)
    // About five seconds of load; the worker is stopped about two seconds in.
    const producing = produce(n, ['--count', '20000', '--users', '25', '--rate', '4000', '--seed', '11'])
    await until(
      'the first counts',
      () => countsOf(first.url, ['user-0', 'user-1', 'user-2']),
      (g) => sum(g) > 0,
      30_000,
    )
    await new Promise((r) => setTimeout(r, 1000))
    await stopWorker(first.worker)
    await producing

    const { counts: want } = expectedFrom(await readTopic(n.hits))
    // What the stopped worker committed is part of the story, not all of it.
    const committed = await mephisto(['-A', appModule, 'tables', '--values', 'major-count', '--json'], {
      env: n.env,
    })
    const partial = new Map(
      Object.entries(JSON.parse(committed.stdout)['major-count'] as Record<string, number>),
    )
    expect(sum(partial)).toBeGreaterThan(0)
    expect(sum(partial)).toBeLessThan(sum(want))

    const second = await startWorker(n)
    try {
      const users = [...want.keys()]
      await until(
        'every count',
        () => countsOf(second.url, users),
        (g) => sum(g) >= sum(want),
      )
      // Anything counted twice would show up now or a moment later.
      await new Promise((r) => setTimeout(r, 1500))
      expect(await countsOf(second.url, users)).toEqual(want)
    } finally {
      await stopWorker(second.worker)
    }
    const final = await mephisto(['-A', appModule, 'tables', '--values', 'major-count', '--json'], {
      env: n.env,
    })
    expect(new Map(Object.entries(JSON.parse(final.stdout)['major-count']))).toEqual(want)
  }, 240_000)
})
