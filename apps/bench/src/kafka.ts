import type { ProcessingGuarantee } from '@mephisto/core'
import { App } from '@mephisto/core'
import type { Hit } from '@mephisto/hit-counter-producer'
import { expectedCounts, generateHits } from '@mephisto/hit-counter-producer'
import { createHitCounter } from '@mephisto/hit-counter-worker'
import '@mephisto/transport-platformatic'
import { Consumer as PlatformaticConsumer } from '@platformatic/kafka'
import { Kafka, logLevel } from 'kafkajs'

/** The Kafka clients Mephisto runs on: kafkajs (the default) and @mephisto/transport-platformatic. */
export type KafkaClient = 'kafkajs' | 'platformatic'

export interface ConsumerBenchResult {
  client: KafkaClient
  messages: number
  /** From the first record to the last (throughput), best of two runs. */
  rawMs: number
  mephistoMs: number
  /** From start() / connect() to the first record: topic checks, group join, assignment. */
  rawStartMs: number
  mephistoStartMs: number
  rawPerSec: number
  mephistoPerSec: number
  ratio: number
}

const PARTITIONS = 8

/** Rejects with `what` after `ms`: a benchmark that stalls must say so, not hang. */
async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function kafka(brokers: string[]): Kafka {
  return new Kafka({ clientId: 'mephisto-bench', brokers, logLevel: logLevel.ERROR })
}

/** Fills a fresh topic with `n` small JSON messages, keyed over 1000 keys. */
export async function fillTopic(brokers: string[], topic: string, n: number): Promise<void> {
  const k = kafka(brokers)
  const admin = k.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true })
  await admin.disconnect()
  const producer = k.producer()
  await producer.connect()
  const chunk = 10_000
  for (let i = 0; i < n; i += chunk) {
    const messages = []
    for (let j = i; j < Math.min(n, i + chunk); j++) {
      messages.push({
        key: `k${j % 1000}`,
        value: JSON.stringify({ id: j, userId: `user-${j % 1000}`, hits: j % 41 }),
      })
    }
    await producer.send({ topic, messages })
  }
  await producer.disconnect()
}

/** A raw kafkajs eachBatch consumer: JSON.parse each value, count, resolve offsets, commit. */
/** Time to the first record (connect, join, assignment) and from the first record to the last. */
interface Timing {
  startMs: number
  readMs: number
}

async function rawConsumer(brokers: string[], topic: string, n: number, run: number): Promise<Timing> {
  // A group of its own per run: a second run in the same group would start at the committed end.
  const consumer = kafka(brokers).consumer({ groupId: `raw-${topic}-${run}` })
  const started = performance.now()
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let seen = 0
  let sum = 0
  let first = 0
  let done!: () => void
  const finished = new Promise<void>((r) => {
    done = r
  })
  await consumer.run({
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      if (first === 0) first = performance.now()
      for (const m of batch.messages) {
        const v = JSON.parse(m.value!.toString('utf8')) as { hits: number }
        sum += v.hits
        resolveOffset(m.offset)
        seen++
      }
      await heartbeat()
      if (seen >= n) done()
    },
  })
  await withTimeout(finished, 120_000, () => `the raw kafkajs consumer read ${seen} of ${n} records`)
  const end = performance.now()
  await consumer.disconnect()
  if (sum < 0) throw new Error('unreachable')
  return { startMs: first - started, readMs: end - first }
}

/** The same work on a raw @platformatic/kafka consumer stream: JSON.parse each value, count, autocommit. */
async function rawPlatformaticConsumer(
  brokers: string[],
  topic: string,
  n: number,
  run: number,
): Promise<Timing> {
  const consumer = new PlatformaticConsumer({
    clientId: 'mephisto-bench-raw',
    bootstrapBrokers: brokers,
    groupId: `raw-platformatic-${topic}-${run}`,
  })
  const started = performance.now()
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: true })
  let seen = 0
  let sum = 0
  let first = 0
  const reading = (async () => {
    for await (const m of stream) {
      if (first === 0) first = performance.now()
      const v = JSON.parse((m.value as Buffer).toString('utf8')) as { hits: number }
      sum += v.hits
      if (++seen >= n) break
    }
  })()
  await withTimeout(
    reading,
    120_000,
    () => `the raw @platformatic/kafka consumer read ${seen} of ${n} records`,
  )
  const end = performance.now()
  await stream.close()
  await consumer.close()
  if (sum < 0) throw new Error('unreachable')
  return { startMs: first - started, readMs: end - first }
}

/** The same work as a stateless Mephisto agent. */
async function mephistoConsumer(
  brokers: string[],
  topic: string,
  n: number,
  run: number,
  client: KafkaClient = 'kafkajs',
): Promise<Timing> {
  const app = new App({
    id: `mephisto-${client}-${topic}-${run}`,
    broker: brokers,
    logger: 'warn',
    web: false,
    transport: client,
  })
  const source = app.topic<string, { hits: number }>(topic)
  let seen = 0
  let sum = 0
  let done!: () => void
  const finished = new Promise<void>((r) => {
    done = r
  })
  let first = 0
  app.agent(source, async (stream) => {
    for await (const v of stream) {
      if (first === 0) first = performance.now()
      sum += v.hits
      if (++seen >= n) done()
    }
  })
  const started = performance.now()
  await app.start()
  await withTimeout(finished, 120_000, () => `the Mephisto agent read ${seen} of ${n} records`)
  const end = performance.now()
  await app.stop()
  if (sum < 0) throw new Error('unreachable')
  return { startMs: first - started, readMs: end - first }
}

/**
 * A stateless Mephisto agent against a raw kafkajs eachBatch consumer, on the same pre-filled
 * topic of the same broker, in one run. Throughput is measured from the first record to the last;
 * the time to the first record (connect, topic checks, group join) is reported on its own.
 */
export async function consumerBench(
  brokers: string[],
  n: number,
  client: KafkaClient = 'kafkajs',
): Promise<ConsumerBenchResult> {
  const topic = `bench-${Date.now().toString(36)}`
  await fillTopic(brokers, topic, n)
  const raw = client === 'kafkajs' ? rawConsumer : rawPlatformaticConsumer
  // Alternate and keep the best of two, so neither side pays for a cold broker cache alone.
  const raw1 = await raw(brokers, topic, n, 1)
  const meph1 = await mephistoConsumer(brokers, topic, n, 1, client)
  const raw2 = await raw(brokers, topic, n, 2)
  const meph2 = await mephistoConsumer(brokers, topic, n, 2, client)
  const rawMs = Math.min(raw1.readMs, raw2.readMs)
  const mephistoMs = Math.min(meph1.readMs, meph2.readMs)
  return {
    client,
    messages: n,
    rawMs,
    mephistoMs,
    rawStartMs: Math.min(raw1.startMs, raw2.startMs),
    mephistoStartMs: Math.min(meph1.startMs, meph2.startMs),
    rawPerSec: (n * 1000) / rawMs,
    mephistoPerSec: (n * 1000) / mephistoMs,
    ratio: rawMs / mephistoMs,
  }
}

export interface HitCounterKafkaResult {
  /** The app id; its topics are `<id>-hits` and `<id>-count`. */
  id: string
  client: KafkaClient
  guarantee: ProcessingGuarantee
  /** Partitions of the input topic. */
  partitions: number
  /** Exactly-once: the transactional producers the worker held at the end. */
  producers: number | undefined
  events: number
  produceMs: number
  endToEndMs: number
  perSec: number
  countsMatch: boolean
}

/**
 * `n` hits on `topic`, each written once: an idempotent kafkajs producer (one request in flight),
 * so a retried request under load does not write a hit twice (Mephisto's own producer, like
 * kafkajs' default, is not idempotent, and the counts are checked against the hits generated).
 */
async function produceBacklog(
  brokers: string[],
  topic: string,
  n: number,
): Promise<{ hits: Hit[]; ms: number }> {
  const producer = kafka(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const started = performance.now()
  const hits = [...generateHits(n, { users: 100, seed: 42 })]
  const chunk = 10_000
  for (let i = 0; i < hits.length; i += chunk) {
    await producer.send({
      topic,
      messages: hits.slice(i, i + chunk).map((h) => ({ key: h.userId, value: JSON.stringify(h) })),
    })
  }
  const ms = performance.now() - started
  await producer.disconnect()
  return { hits, ms }
}

/**
 * The hit counter on Kafka over a backlog: `n` events are produced first (kafkajs, the same for
 * every client), then the worker starts and counts them all; the figure is events per second from
 * `start()` to the last count (start-up included), and the counts are checked. Topics of their
 * own per run, so runs never share a backlog.
 */
export async function hitCounterKafkaBench(
  brokers: string[],
  n: number,
  guarantee: ProcessingGuarantee = 'at_least_once',
  client: KafkaClient = 'kafkajs',
  partitions = PARTITIONS,
): Promise<HitCounterKafkaResult> {
  const id = `bench-hits-${client}-${Date.now().toString(36)}`
  const hitsTopic = `${id}-hits`
  const admin = kafka(brokers).admin()
  await admin.connect()
  await admin.createTopics({
    topics: [{ topic: hitsTopic, numPartitions: partitions }],
    waitForLeaders: true,
  })
  await admin.disconnect()
  const produced = await produceBacklog(brokers, hitsTopic, n)
  const expected = expectedCounts(produced.hits)
  const want = [...expected.values()].reduce((a, b) => a + b, 0)
  const { app, counts } = createHitCounter({
    broker: brokers,
    id,
    hitsTopic,
    countTopic: `${id}-count`,
    processingGuarantee: guarantee,
    app: { web: false, transport: client, logger: 'warn' },
  })
  const started = performance.now()
  await app.start()
  let total = 0
  const deadline = Date.now() + 300_000
  while (Date.now() < deadline) {
    total = 0
    for await (const [, v] of counts.entries()) total += v
    if (total >= want) break
    await new Promise((r) => setTimeout(r, 20))
  }
  const endToEndMs = performance.now() - started
  let countsMatch = total === want
  const wrong: string[] = []
  for (const [u, c] of expected) {
    const got = await counts.get(u)
    if (got !== c) wrong.push(`${u}: ${got} (want ${c})`)
  }
  if (wrong.length > 0) countsMatch = false
  if (!countsMatch)
    process.stderr.write(
      `hit counter (${client}, ${guarantee}, ${partitions} partitions): counted ${total} of ${want}; ${wrong.length} user(s) wrong: ${wrong.slice(0, 5).join(', ')}\n`,
    )
  const producers = app.worker?.transactionProducers()?.producers
  await app.stop()
  return {
    id,
    client,
    guarantee,
    partitions,
    producers,
    events: n,
    produceMs: produced.ms,
    endToEndMs,
    perSec: (n * 1000) / endToEndMs,
    countsMatch,
  }
}
