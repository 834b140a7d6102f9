// Scaling out and back on a real broker, with real processes (issue 15, must show 1 and 2): three
// `mephisto worker` processes of one app count events per user (12 partitions, a table sharded
// like them) and hold a global table written by an agent from a second topic. While events keep
// flowing, one worker is stopped (SIGTERM, 3 -> 2) and a new one started (2 -> 3):
// - every count is exact at the end, on the workers and in the committed changelog;
// - each step moves only the input partitions stickiness must move: the leaver's 4, then the 4
//   the newcomer takes (assignments read from each worker's /topics);
// - every worker holds the whole global table as soon as it reports ready, and every write to it,
//   from whichever worker, reaches all of them; after a SIGKILL of one worker the others go on
//   answering global-table reads from their own copies, before and after the group rebalances.
import { expect, it } from 'vitest'
import type { RawRecord } from '../../src/index.js'
import type { Running } from '../cliProcess.js'
import { cliMain, start } from '../cliProcess.js'
import {
  type Answer,
  describeKafka,
  getAnswer,
  kafkaBrokers,
  testTransport,
  topicsDeletedAfterAll,
  uniqueName,
  until,
} from './kafka.js'

const appModule = new URL('./scalingFixture.ts', import.meta.url).pathname
const PARTITIONS = 12
const USERS = 120
const REFS = 200
const created = topicsDeletedAfterAll()

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const sum = (xs: Iterable<number>): number => [...xs].reduce((a, b) => a + b, 0)
const all = Array.from({ length: PARTITIONS }, (_, p) => p)

const get = (url: string): Promise<Answer> => getAnswer(url, 10_000)

interface Worker {
  name: string
  run: Running
  url: string
  /** The worker id it answers with (x-mephisto-worker, /health). */
  id: string
  /** Its copy of the global table, read the moment it reported ready. */
  refsAtReady: Record<string, string>
}

async function startWorker(name: string, app: string): Promise<Worker> {
  const run = start(cliMain, ['-A', appModule, 'worker', '-l', 'warn'], {
    env: { KAFKA_BROKERS: kafkaBrokers(), SCALING_ID: app },
  })
  const [, url] = await run.waitFor(/ready: \S+ in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//, 60_000)
  // Read before anything else: the global table must be whole at ready, not a follow later.
  const refs = await get(`${url}/refs`)
  expect(refs.status, JSON.stringify(refs.body)).toBe(200)
  return { name, run, url: url!, id: refs.body.worker, refsAtReady: refs.body.refs }
}

/** Partition of the events topic -> the name of the worker assigned it, from each worker's /topics. */
async function owners(workers: Worker[], topic: string): Promise<Map<number, string>> {
  const out = new Map<number, string>()
  for (const w of workers) {
    const topics = (await get(`${w.url}/topics`)).body as { name: string; assigned: number[] }[]
    for (const p of topics.find((t) => t.name === topic)?.assigned ?? []) {
      if (out.has(p)) throw new Error(`partition ${p} assigned to ${out.get(p)} and ${w.name}`)
      out.set(p, w.name)
    }
  }
  return out
}

/** The group settled: every partition assigned once, an equal share each, the same twice in a row. */
async function settled(workers: Worker[], topic: string): Promise<Map<number, string>> {
  const balanced = (o: Map<number, string>): boolean =>
    o.size === PARTITIONS &&
    workers.every((w) => [...o.values()].filter((n) => n === w.name).length === PARTITIONS / workers.length)
  return until(
    `the ${PARTITIONS} partitions split evenly between ${workers.map((w) => w.name).join(', ')}`,
    async () => {
      const first = await owners(workers, topic)
      if (!balanced(first)) return first
      await sleep(300)
      const second = await owners(workers, topic)
      return [...first].every(([p, n]) => second.get(p) === n) ? second : new Map<number, string>()
    },
    balanced,
  )
}

const moved = (before: Map<number, string>, after: Map<number, string>): number[] =>
  all.filter((p) => before.get(p) !== after.get(p))

const show = (o: Map<number, string>): string => {
  const by = new Map<string, number[]>()
  for (const [p, n] of [...o].sort((a, b) => a[0] - b[0])) by.set(n, [...(by.get(n) ?? []), p])
  return [...by]
    .sort()
    .map(([n, ps]) => `${n}[${ps.join(',')}]`)
    .join(' ')
}

/** Sends events keyed `user-<i % USERS>` in chunks of 50 every 50 ms until stopped; counts what it sent. */
function flow(topic: string): { stop(): Promise<Map<string, number>>; sent(): number } {
  const want = new Map<string, number>()
  let sent = 0
  let stopping = false
  const running = (async () => {
    const t = testTransport()
    await t.connect()
    const producer = t.producer()
    try {
      while (!stopping) {
        for (let j = 0; j < 50; j++, sent++) {
          const user = `user-${sent % USERS}`
          want.set(user, (want.get(user) ?? 0) + 1)
          await producer.send({ topic, key: Buffer.from(user), value: Buffer.from('1') })
        }
        await producer.flush()
        await sleep(50)
      }
    } finally {
      await producer.close()
      await t.close()
    }
  })()
  return {
    sent: () => sent,
    async stop() {
      stopping = true
      await running
      return want
    },
  }
}

async function produceRefs(topic: string, version: string): Promise<Record<string, string>> {
  const want: Record<string, string> = {}
  const t = testTransport()
  await t.connect()
  const producer = t.producer()
  try {
    for (let i = 0; i < REFS; i++) {
      want[`ref-${i}`] = `${version}-${i}`
      await producer.send({
        topic,
        key: Buffer.from(`ref-${i}`),
        value: Buffer.from(JSON.stringify(want[`ref-${i}`])),
      })
    }
    await producer.flush()
  } finally {
    await producer.close()
    await t.close()
  }
  return want
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

/** Every offset of `topic` committed by group `id`. */
async function committedAll(id: string, topic: string): Promise<boolean> {
  const [ends, committed] = await admin((a) => Promise.all([a.endOffsets(topic), a.groupOffsets(id, topic)]))
  return [...ends].every(([p, end]) => committed.get(p) === end)
}

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

const decode = (b: Buffer | null | undefined): unknown => {
  const text = b?.toString() ?? ''
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

async function stop(w: Worker): Promise<void> {
  w.run.child.kill('SIGTERM')
  const done = await w.run.exited
  expect(done.code, done.stderr).toBe(0)
}

describeKafka('scaling out and back across worker processes', () => {
  it('3 -> 2 -> 3 with events flowing: exact counts, only the partitions that must move, the global table everywhere', {
    timeout: 150_000,
  }, async () => {
    const began = Date.now()
    const mark = (): string => `${((Date.now() - began) / 1000).toFixed(1)} s`
    const timeline: string[] = []
    const id = uniqueName('scaling')
    created.push(id)
    const eventsTopic = `${id}-events`
    const refsTopic = `${id}-refs`
    const workers: Worker[] = []
    let producing: ReturnType<typeof flow> | undefined
    try {
      // One worker, and the global table's first version written through it and committed.
      workers.push(await startWorker('a', id))
      const v1 = await produceRefs(refsTopic, 'v1')
      await until('the refs committed', () => committedAll(id, refsTopic), Boolean)
      timeline.push(`a ready, refs v1 committed: ${mark()}`)

      // Two more: each has the whole global table the moment it is ready.
      workers.push(...(await Promise.all([startWorker('b', id), startWorker('c', id)])))
      for (const w of workers.slice(1)) expect(w.refsAtReady, `${w.name} at ready`).toEqual(v1)
      const [a, b, c] = workers as [Worker, Worker, Worker]
      const three = await settled([a, b, c], eventsTopic)
      timeline.push(`b, c ready, 3 workers settled: ${mark()}`)

      // Events flow from here to the end of the 2 -> 3 step; the global table gets a second
      // version meanwhile, written by whichever workers own the refs topic's partitions.
      producing = flow(eventsTopic)
      await sleep(1_000)
      const v2 = await produceRefs(refsTopic, 'v2')

      // 3 -> 2: c stops cleanly. Only its 4 partitions move.
      let stepStarted = Date.now()
      await stop(c)
      const two = await settled([a, b], eventsTopic)
      const scaleIn = Date.now() - stepStarted
      const movedIn = moved(three, two)
      timeline.push(`3 -> 2 settled in ${scaleIn} ms: ${mark()}`)
      await until('the refs v2 committed', () => committedAll(id, refsTopic), Boolean)
      await sleep(1_000)

      // 2 -> 3: a new worker d, with the whole global table (v2: committed before it started) at ready.
      stepStarted = Date.now()
      const d = await startWorker('d', id)
      workers.push(d)
      expect(d.refsAtReady, 'd at ready').toEqual(v2)
      const again = await settled([a, b, d], eventsTopic)
      const scaleOut = Date.now() - stepStarted
      const movedOut = moved(two, again)
      timeline.push(`2 -> 3 (d started) settled in ${scaleOut} ms: ${mark()}`)
      await sleep(1_000)
      const want = await producing.stop()
      producing = undefined
      const events = sum(want.values())
      timeline.push(`${events} events sent: ${mark()}`)

      process.stderr.write(
        `scaling.kafka: 3 workers ${show(three)}; after c left ${show(two)} (moved ${movedIn.length}: ` +
          `[${movedIn.join(',')}]); after d joined ${show(again)} (moved ${movedOut.length}: [${movedOut.join(',')}])\n`,
      )
      // Sticky: the leaver's partitions and nothing else; then only what the newcomer takes.
      expect(movedIn.sort((x, y) => x - y)).toEqual(all.filter((p) => three.get(p) === 'c'))
      expect(movedOut.sort((x, y) => x - y)).toEqual(all.filter((p) => again.get(p) === 'd'))
      expect(movedIn).toHaveLength(4)
      expect(movedOut).toHaveLength(4)

      // Every event counted once, on the workers that own the counts and in the committed changelog.
      const live = [a, b, d]
      const final = await until(
        'every event counted and committed',
        async () => {
          const [cs, committed] = await Promise.all([
            Promise.all(
              live.map(
                async (w) => (await get(`${w.url}/counts`)).body as { counts: Record<string, number> },
              ),
            ),
            committedAll(id, eventsTopic),
          ])
          return { cs, committed }
        },
        ({ cs, committed }) => committed && sum(cs.flatMap((c) => Object.values(c.counts))) >= events,
      )
      const got = Object.assign({}, ...final.cs.map((c) => c.counts)) as Record<string, number>
      expect(got).toEqual(Object.fromEntries(want))
      const changelog = new Map<unknown, unknown>()
      for (const r of await readTopic(`${id}-counts-changelog`)) changelog.set(decode(r.key), decode(r.value))
      expect(Object.fromEntries(changelog)).toEqual(Object.fromEntries(want))
      timeline.push(`counts exact on the workers and in the changelog: ${mark()}`)

      // Every worker, a and b included (they wrote part of v2 and followed the rest), holds v2 whole.
      await until(
        'v2 of the global table on every worker',
        async () => {
          const wrong: string[] = []
          for (const w of live) {
            const refs = (await get(`${w.url}/refs`)).body.refs as Record<string, string>
            const stale = Object.keys(v2).filter((k) => refs[k] !== v2[k])
            if (stale.length > 0 || Object.keys(refs).length !== REFS)
              wrong.push(`${w.name}: ${Object.keys(refs).length} keys, ${stale.length} not v2`)
          }
          return wrong
        },
        (wrong) => wrong.length === 0,
        15_000,
      )

      // kill -9 of a: b and d go on reading the global table from their own copies, at once and
      // after the group has taken a's partitions (a session timeout later).
      const readAll = async (w: Worker): Promise<string[]> => {
        const wrong: string[] = []
        for (const [key, value] of Object.entries(v2)) {
          const r = await get(`${w.url}/tables/refs/${key}`)
          if (r.status !== 200 || r.body.value !== value || r.worker !== w.id)
            wrong.push(`${key}@${w.name}: ${r.status} ${JSON.stringify(r.body.value)} by ${r.worker}`)
        }
        return wrong
      }
      a.run.child.kill('SIGKILL')
      const killed = Date.now()
      expect((await a.run.exited).signal).toBe('SIGKILL')
      for (const w of [b, d]) expect(await readAll(w)).toEqual([])
      const readsAfterKill = Date.now() - killed
      await settled([b, d], eventsTopic)
      const takeover = Date.now() - killed
      for (const w of [b, d]) expect(await readAll(w)).toEqual([])
      timeline.push(
        `a killed: ${REFS * 2} global reads in ${readsAfterKill} ms, b and d own everything after ${takeover} ms: ${mark()}`,
      )
      await Promise.all([b, d].map(stop))
      timeline.push(`stopped: ${mark()}`)
      process.stderr.write(`scaling.kafka: ${timeline.join('; ')}\n`)
    } finally {
      await producing?.stop().catch(() => {})
      for (const w of workers)
        if (w.run.child.exitCode === null && w.run.child.signalCode === null) w.run.child.kill('SIGKILL')
    }
  })
})
