// Any key from any worker on a real broker (issue 15, item 1): three `mephisto worker` processes
// of one app share a 6-partition topic and a table sharded like it. Every key of the table, read
// through each worker's web port, gives the right value, answered by the worker that owns it
// (x-mephisto-worker); an ask() made on each worker for keys the others own is answered by the
// owner, through the replies topic.
import { expect, it } from 'vitest'
import { defaultPartition } from '../../src/transport/partitioner.js'
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

const appModule = new URL('./routingFixture.ts', import.meta.url).pathname
const PARTITIONS = 6
const USERS = 60
const EVENTS = 3_000
const created = topicsDeletedAfterAll()

interface Worker {
  run: Running
  url: string
  id: string
}

async function startWorker(id: string): Promise<Worker> {
  const run = start(cliMain, ['-A', appModule, 'worker', '-l', 'warn'], {
    env: { KAFKA_BROKERS: kafkaBrokers(), ROUTING_ID: id },
  })
  const [, url] = await run.waitFor(/ready: \S+ in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//, 90_000)
  const health = await get(`${url}/health`)
  return { run, url: url!, id: health.body.worker }
}

const get = (url: string): Promise<Answer> => getAnswer(url, 20_000)

/** The partitions of the events topic each worker is assigned. */
async function assignments(workers: Worker[], topic: string): Promise<Map<Worker, number[]>> {
  const out = new Map<Worker, number[]>()
  for (const w of workers) {
    const topics = (await get(`${w.url}/topics`)).body as { name: string; assigned: number[] }[]
    out.set(w, topics.find((t) => t.name === topic)?.assigned ?? [])
  }
  return out
}

async function produce(topic: string): Promise<Map<string, number>> {
  const want = new Map<string, number>()
  const t = testTransport()
  await t.connect()
  const producer = t.producer()
  try {
    for (let i = 0; i < EVENTS; i++) {
      const user = `user-${i % USERS}`
      want.set(user, (want.get(user) ?? 0) + 1)
      await producer.send({ topic, key: Buffer.from(user), value: Buffer.from('1') })
    }
    await producer.flush()
  } finally {
    await producer.close()
    await t.close()
  }
  return want
}

/** Runs `fn`; when it fails, the failure carries what each worker said on stderr (the clue). */
async function withStderr<T>(workers: Worker[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const said = workers.map((w) => `--- worker ${w.id} stderr:\n${w.run.stderr().slice(-3000)}`).join('\n')
    throw new Error(`${(err as Error).message}\n${said}`)
  }
}

async function stop(w: Worker): Promise<void> {
  w.run.child.kill('SIGTERM')
  const done = await w.run.exited
  expect(done.code, done.stderr).toBe(0)
}

describeKafka('routing across worker processes', () => {
  it('every key through each worker, answered by its owner; ask() across workers', {
    timeout: 120_000,
  }, async () => {
    const started = Date.now()
    const id = uniqueName('routing')
    created.push(id)
    const topic = `${id}-events`
    let readMs = 0
    const askMs: number[] = []
    const workers = await Promise.all([startWorker(id), startWorker(id), startWorker(id)])
    try {
      // The group settles: each worker owns two of the six partitions.
      const owned = await until(
        'the partitions split between the three workers',
        () => assignments(workers, topic),
        (a) =>
          a.size === 3 &&
          [...a.values()].every((ps) => ps.length === 2) &&
          [...a.values()].flat().sort().join() === Array.from({ length: PARTITIONS }, (_, p) => p).join(),
      )
      const ownerOf = (partition: number): Worker => [...owned].find(([, ps]) => ps.includes(partition))![0]

      const want = await produce(topic)
      const read = (w: Worker, user: string) => get(`${w.url}/tables/counts/${user}`)
      // Every count, through every worker (route books follow the routes topic a few times a second).
      await withStderr(workers, () =>
        until(
          'every key through every worker',
          async () => {
            const wrong: string[] = []
            for (const w of workers) {
              for (const [user, n] of want) {
                const a = await read(w, user)
                if (a.status !== 200 || a.body.value !== n)
                  wrong.push(`${user}@${w.id}: ${a.status} ${a.body.value ?? a.body.error}`)
              }
            }
            return wrong
          },
          (wrong) => wrong.length === 0,
        ),
      )
      let forwarded = 0
      const readsStarted = performance.now()
      for (const w of workers) {
        for (const [user, n] of want) {
          const a = await read(w, user)
          expect(a.status, JSON.stringify(a.body)).toBe(200)
          expect(a.body.value).toBe(n)
          expect(a.worker).toBe(ownerOf(a.body.partition).id)
          if (a.worker !== w.id) forwarded++
        }
      }
      readMs = (performance.now() - readsStarted) / (USERS * workers.length)
      // Two thirds of the reads were answered by another worker than the one asked.
      expect(forwarded).toBe((2 * USERS * workers.length) / 3)

      // ask() on each worker, for a user of each partition it does not own.
      const users = [...want.keys()]
      for (const w of workers) {
        for (let p = 0; p < PARTITIONS; p++) {
          if (ownerOf(p) === w) continue
          const user = users.find((u) => defaultPartition(Buffer.from(u), PARTITIONS) === p)!
          const asked = performance.now()
          const a = await get(`${w.url}/ask/${user}?n=10`)
          askMs.push(performance.now() - asked)
          expect(a.status, JSON.stringify(a.body)).toBe(200)
          want.set(user, want.get(user)! + 10)
          expect(a.body.asker).toBe(w.id)
          expect(a.body.answer).toEqual({ total: want.get(user), worker: ownerOf(p).id })
        }
      }
    } finally {
      await Promise.all(workers.map(stop))
    }
    const took = (Date.now() - started) / 1000
    const mean = askMs.reduce((a, b) => a + b, 0) / askMs.length
    console.log(
      `routing.kafka: ${took.toFixed(1)} s in all; a table read ${readMs.toFixed(1)} ms on average (2/3 forwarded), ` +
        `an ask across workers ${mean.toFixed(0)} ms on average (max ${Math.max(...askMs).toFixed(0)})`,
    )
  })
})
