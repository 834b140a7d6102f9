import { randomUUID } from 'node:crypto'
import type { RawRecord, TransportProducer } from '@mephisto/core'
import { HEADERS, KafkaTransport } from '@mephisto/core'
import { sleep } from './processes.js'

/** One run's names: a fresh app id and topics, so scenarios never see each other's data. */
export interface Names {
  id: string
  hits: string
  count: string
  changelog: string
  /** Dead letters of the input topic (its poison) and of count_topic (the table poison). */
  dlq: string
  countDlq: string
}

export function names(scenario: string): Names {
  const id = `chaos-${scenario}-${randomUUID().slice(0, 6)}`
  return {
    id,
    hits: `${id}-hit_count`,
    count: `${id}-count_topic`,
    changelog: `${id}-major-count-changelog`,
    dlq: `${id}-${id}-hit_count-dlq`,
    countDlq: `${id}-${id}-count_topic-dlq`,
  }
}

/** The environment of a worker of this run. */
export function workerEnv(n: Names, brokers: string, guarantee: string): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers,
    HIT_COUNTER_ID: n.id,
    HIT_COUNTER_TOPIC: n.hits,
    HIT_COUNTER_COUNT_TOPIC: n.count,
    MEPHISTO_PROCESSING_GUARANTEE: guarantee,
  }
}

export const USERS = 40
export const PARTITIONS = 4

/**
 * Hits of these users are valid input, but the counting agent of `tableValueApp.ts` writes a
 * value for them that the table's JSON codec cannot encode: they go on to count_topic, are
 * dead-lettered from there and are never counted.
 */
export const TABLE_POISON_PREFIX = 'table-poison-'

export function isTablePoisonUser(userId: string): boolean {
  return userId.startsWith(TABLE_POISON_PREFIX)
}

/** A hit of table-poison user `user` (over 20, so it reaches the counting agent). */
export function tablePoisonHit(seq: number, user: number): { key: Buffer; value: Buffer } {
  return markerHit(`${TABLE_POISON_PREFIX}${user % PARTITIONS}`, seq)
}

/**
 * Hits of these users are valid input, but the counting agent of `hungAgentApp.ts` hangs on them
 * past its `eventTimeoutMs`: they go on to count_topic, are dead-lettered from there with
 * EVENT_TIMEOUT and are never counted.
 */
export const HUNG_PREFIX = 'hung-agent-'
/** The counting agent's `eventTimeoutMs` in `hungAgentApp.ts`. */
export const HUNG_EVENT_TIMEOUT_MS = 2_000
/** How long the hung users of an odd index hang before they try their (late) table write. */
export const HUNG_WAKE_MS = 4_000

/** The index of a hung user (`hung-agent-<i>`), or undefined for any other user. */
export function hungUserIndex(userId: string): number | undefined {
  return userId.startsWith(HUNG_PREFIX) ? Number(userId.slice(HUNG_PREFIX.length)) : undefined
}

/** A hit of hung user `user` (over 20, so it reaches the counting agent). */
export function hungHit(seq: number, user: number): { key: Buffer; value: Buffer } {
  return markerHit(`${HUNG_PREFIX}${user % PARTITIONS}`, seq)
}

/** Users whose hits the counting agent of a variant app fails on purpose: never counted. */
function isMarkerUser(userId: string): boolean {
  return isTablePoisonUser(userId) || hungUserIndex(userId) !== undefined
}

function markerHit(userId: string, seq: number): { key: Buffer; value: Buffer } {
  return {
    key: Buffer.from(userId),
    value: Buffer.from(JSON.stringify({ userId, hits: 30, timestamp: Date.now(), seq })),
  }
}

/** How `produce` is told to stop early (a scenario that overran its deadline). */
export interface Stop {
  stopped: boolean
}

/**
 * Produces hit events at about `rate` per second until `total` are sent; each carries a unique
 * `seq`. A batch whose send fails (the broker is down) is sent again on a new producer until it
 * goes through: a failed producer refuses every later send by design, so retrying on it would
 * spin for ever. The input is checked afterwards by reading the topic back, so a record written
 * twice by a retry is simply two events. Resolves with the number of events sent.
 */
export async function produce(
  newProducer: () => TransportProducer,
  topic: string,
  total: number,
  rate: number,
  extra: (seq: number) => { key: Buffer | null; value: Buffer } | undefined = () => undefined,
  /** Keeps producing past `total` while this returns false (the disruptions are not over). */
  done: () => boolean = () => true,
  stop: Stop = { stopped: false },
  log: (line: string) => void = () => {},
): Promise<number> {
  const started = Date.now()
  const size = Math.max(1, Math.round(rate / 20))
  let producer = newProducer()
  let seq = 0
  let failures = 0
  try {
    while ((seq < total || !done()) && !stop.stopped) {
      const batch: { key: Buffer | null; value: Buffer }[] = []
      for (let i = seq; i < seq + size; i++) {
        const userId = `user-${(i * 7919) % USERS}`
        const hits = (i * 104_729) % 41
        batch.push(
          extra(i) ?? {
            key: Buffer.from(userId),
            value: Buffer.from(JSON.stringify({ userId, hits, timestamp: Date.now(), seq: i })),
          },
        )
      }
      for (;;) {
        try {
          for (const record of batch) await producer.send({ topic, ...record })
          await producer.flush()
          break
        } catch (err) {
          if (stop.stopped) return seq
          if (failures++ % 10 === 0)
            log(`chaos: input producer failed (${(err as Error).message}); retrying on a new one`)
          await producer.abort().catch(() => {})
          await sleep(500)
          if (stop.stopped) return seq
          producer = newProducer()
        }
      }
      seq += size
      const due = started + (seq / rate) * 1000
      if (due > Date.now()) await sleep(due - Date.now())
    }
    return seq
  } finally {
    await producer.close().catch(() => {})
  }
}

/** Every record of a topic a read-committed reader sees. */
export async function readAll(t: KafkaTransport, topic: string): Promise<RawRecord[]> {
  const ends = await t.admin.endOffsets(topic)
  const starts = await t.admin.startOffsets(topic)
  const out: RawRecord[] = []
  await t.read(
    topic,
    [...ends].map(([partition, to]) => ({ partition, from: starts.get(partition) ?? 0, to })),
    (records) => {
      out.push(...records)
    },
  )
  return out
}

interface Hit {
  userId: string
  hits: number
  timestamp: number
  seq: number
}

/** What the input topic holds, as the hit counter should see it. */
export interface Expectation {
  events: number
  valid: number
  /** Records to be dead-lettered: input the schema refuses, and table-poison and hung hits. */
  poison: number
  /**
   * Each of them, by what identifies its dead letter: `hits <partition>@<offset>` for input the
   * schema refuses, `seq <seq>` for a table-poison or hung hit (dead-lettered from count_topic).
   */
  deadLetters: Set<string>
  counts: Map<string, number>
  /** count_topic values expected, by seq, with how many times each input event was written. */
  outputs: Map<number, number>
}

export function expect(input: RawRecord[]): Expectation {
  const counts = new Map<string, number>()
  const outputs = new Map<number, number>()
  const deadLetters = new Set<string>()
  let valid = 0
  let markers = 0
  for (const r of input) {
    const hit = parseHit(r)
    if (!hit) {
      deadLetters.add(`hits ${r.partition}@${r.offset}`)
      continue
    }
    valid++
    if (hit.hits > 20) {
      outputs.set(hit.seq, (outputs.get(hit.seq) ?? 0) + 1)
      if (isMarkerUser(hit.userId)) {
        markers++
        deadLetters.add(`seq ${hit.seq}`)
      } else counts.set(hit.userId, (counts.get(hit.userId) ?? 0) + 1)
    }
  }
  return {
    events: input.length,
    valid,
    poison: input.length - valid + markers,
    deadLetters,
    counts,
    outputs,
  }
}

/** A hit the hit counter's schema accepts, or undefined for poison. */
function parseHit(r: RawRecord): Hit | undefined {
  if (r.key === null || r.value === null || r.value.length > 100_000) return undefined
  if (!isUtf8(r.key)) return undefined
  try {
    const v = JSON.parse(r.value.toString('utf8')) as Partial<Hit>
    if (typeof v !== 'object' || v === null) return undefined
    if (typeof v.userId !== 'string' || v.userId === '' || typeof v.hits !== 'number') return undefined
    if (!Number.isFinite(v.hits) || typeof v.timestamp !== 'number') return undefined
    return v as Hit
  } catch {
    return undefined
  }
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b)
}

/** The outcome of a run, compared with its input. */
export interface Outcome {
  events: number
  poison: number
  expected: number
  counted: number
  losses: number
  duplicates: number
  outputs: number
  outputDuplicates: number
  outputLosses: number
  dlq: number
  dlqWithReason: number
  /** Expected dead letters (see `Expectation.deadLetters`) not found in the dead-letter topics. */
  dlqMissing: number
  /** Dead letters of records that are not poison. */
  dlqUnexpected: number
  /** Each poison pill dead-lettered more than once, with where its copies sit and when each failed. */
  dlqTwice: string[]
  /** Dead letters from count_topic: table-poison and hung hits. */
  countDlq: number
  /** Of those, the ones with code ENCODE whose error names the table and the key. */
  countDlqEncodeNamed: number
  /** Of those, the ones with code EVENT_TIMEOUT whose error names the event and eventTimeoutMs. */
  countDlqTimedOut: number
  /** Counts in the table of users whose hits must never be counted (table-poison, hung). */
  markerCounted: number
}

/** Reads the table (its changelog), count_topic and the DLQ, and compares them with the input. */
export async function outcome(t: KafkaTransport, n: Names): Promise<Outcome> {
  const exp = expect(await readAll(t, n.hits))
  const table = new Map<string, number>()
  for (const r of await readAll(t, n.changelog)) {
    if (r.key === null) continue
    if (r.value === null) table.delete(r.key.toString())
    else table.set(r.key.toString(), Number(JSON.parse(r.value.toString())))
  }
  let losses = 0
  let duplicates = 0
  for (const user of new Set([...exp.counts.keys(), ...table.keys()])) {
    const want = exp.counts.get(user) ?? 0
    const got = table.get(user) ?? 0
    losses += Math.max(0, want - got)
    duplicates += Math.max(0, got - want)
  }
  const seen = new Map<number, number>()
  const outputs = await readAll(t, n.count)
  for (const r of outputs) {
    const seq = (JSON.parse(r.value!.toString()) as Hit).seq
    seen.set(seq, (seen.get(seq) ?? 0) + 1)
  }
  let outputDuplicates = 0
  let outputLosses = 0
  for (const seq of new Set([...exp.outputs.keys(), ...seen.keys()])) {
    const want = exp.outputs.get(seq) ?? 0
    const got = seen.get(seq) ?? 0
    outputLosses += Math.max(0, want - got)
    outputDuplicates += Math.max(0, got - want)
  }
  const topics = await t.admin.listTopics()
  const inputDead = topics.includes(n.dlq) ? await readAll(t, n.dlq) : []
  const countDead = topics.includes(n.countDlq) ? await readAll(t, n.countDlq) : []
  const dead = [...inputDead, ...countDead]
  const dlqWithReason = dead.filter((r) => r.headers[HEADERS.error] && r.headers[HEADERS.errorCode]).length
  const header = (r: RawRecord, name: string): string => r.headers[name]?.toString() ?? ''
  const deadIds = new Set<string>()
  const copies = new Map<string, string[]>()
  const copy = (id: string, r: RawRecord): void => {
    const where = `${r.partition}@${r.offset} failed at ${header(r, HEADERS.failedAt)}`
    copies.set(id, [...(copies.get(id) ?? []), where])
  }
  let dlqUnexpected = 0
  for (const r of inputDead) {
    const id = `hits ${header(r, HEADERS.sourcePartition)}@${header(r, HEADERS.sourceOffset)}`
    copy(id, r)
    if (exp.deadLetters.has(id)) deadIds.add(id)
    else dlqUnexpected++
  }
  let countDlqEncodeNamed = 0
  let countDlqTimedOut = 0
  for (const r of countDead) {
    let hit: Partial<Hit> = {}
    try {
      hit = JSON.parse(r.value?.toString() ?? '') as Partial<Hit>
    } catch {
      // Not a hit: counted as unexpected below.
    }
    const id = `seq ${hit.seq}`
    copy(id, r)
    if (exp.deadLetters.has(id)) deadIds.add(id)
    else dlqUnexpected++
    const error = header(r, HEADERS.error)
    if (
      header(r, HEADERS.errorCode) === 'ENCODE' &&
      error.includes('table major-count') &&
      error.includes(JSON.stringify(hit.userId ?? null))
    )
      countDlqEncodeNamed++
    const event = `${n.count}[${header(r, HEADERS.sourcePartition)}]@${header(r, HEADERS.sourceOffset)}`
    if (
      header(r, HEADERS.errorCode) === 'EVENT_TIMEOUT' &&
      error.includes(`${event} was still in progress`) &&
      error.includes('eventTimeoutMs')
    )
      countDlqTimedOut++
  }
  let markerCounted = 0
  for (const [user, count] of table) if (isMarkerUser(user)) markerCounted += count
  return {
    events: exp.events,
    poison: exp.poison,
    expected: [...exp.counts.values()].reduce((a, b) => a + b, 0),
    counted: [...table.values()].reduce((a, b) => a + b, 0),
    losses,
    duplicates,
    outputs: outputs.length,
    outputDuplicates,
    outputLosses,
    dlq: dead.length,
    dlqWithReason,
    dlqMissing: exp.deadLetters.size - deadIds.size,
    dlqUnexpected,
    dlqTwice: [...copies].filter(([, at]) => at.length > 1).map(([id, at]) => `${id} at ${at.join(', ')}`),
    countDlq: countDead.length,
    countDlqEncodeNamed,
    countDlqTimedOut,
    markerCounted,
  }
}

/**
 * Waits until both stages are done: every input record committed, and count_topic committed past
 * its last record. Returns false on timeout.
 */
export async function waitDone(t: KafkaTransport, n: Names, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const ends = await t.admin.endOffsets(n.hits)
      const committed = await t.admin.groupOffsets(n.id, n.hits)
      const inputDone = [...ends].every(([p, end]) => (committed.get(p) ?? -1) >= end)
      if (inputDone) {
        const outputs = await readAll(t, n.count)
        const last = new Map<number, number>()
        for (const r of outputs) last.set(r.partition, Math.max(last.get(r.partition) ?? -1, r.offset))
        const countCommitted = await t.admin.groupOffsets(n.id, n.count)
        if ([...last].every(([p, o]) => (countCommitted.get(p) ?? -1) > o)) return true
      }
    } catch {
      // The broker may be coming back.
    }
    await sleep(500)
  }
  return false
}

/**
 * Time from a disruption until the group commits past where it was: every input partition that
 * had records waiting at `since` has its committed offset moved on. Resolves with milliseconds,
 * or -1 on timeout.
 */
export async function timeToProgress(
  t: KafkaTransport,
  n: Names,
  since: number,
  timeoutMs: number,
): Promise<number> {
  let before: Map<number, number> | undefined
  while (before === undefined && Date.now() < since + timeoutMs) {
    before = await t.admin.groupOffsets(n.id, n.hits).catch(() => undefined)
    if (before === undefined) await sleep(200)
  }
  if (before === undefined) return -1
  const ends = await t.admin.endOffsets(n.hits).catch(() => new Map<number, number>())
  const waiting = [...before].filter(([p, o]) => (ends.get(p) ?? 0) > o).map(([p]) => p)
  while (Date.now() < since + timeoutMs) {
    const now = await t.admin.groupOffsets(n.id, n.hits).catch(() => undefined)
    if (now && waiting.every((p) => (now.get(p) ?? -1) > (before.get(p) ?? -1))) return Date.now() - since
    await sleep(100)
  }
  return -1
}

export function transport(brokers: string): KafkaTransport {
  return new KafkaTransport(brokers.split(','), { clientId: 'mephisto-chaos' })
}
