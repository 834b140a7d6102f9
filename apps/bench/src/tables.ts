// Table scenarios on Kafka, each as a ratio to the plain table count measured in the same run: the
// hit counter's per-user count in a plain table, the same count in a tumbling 1-minute window by
// event time, and a stream-table join (each hit paired with its user's profile) before the count.
// Every scenario reads the same pre-filled topic from the beginning in a group of its own; the
// figures are from its first record to its last, best of three alternating runs.

import type { Window } from '@mephisto/core'
import { App } from '@mephisto/core'
import type { Hit } from '@mephisto/hit-counter-producer'
import { generateHits } from '@mephisto/hit-counter-producer'
import { Kafka, logLevel } from 'kafkajs'

const PARTITIONS = 4
const USERS = 100
const MINUTE = 60_000
/** Event time between two hits: 500,000 hits span about 83 minutes, so windows open and close. */
const STEP_MS = 10
/** Alternating runs of each scenario; the best counts (a shared machine slows some of them). */
const RUNS = 3

export type TableScenario = 'plain' | 'windowed' | 'join'

export interface ScenarioResult {
  /** From the first record to the last, best of the runs. */
  ms: number
  /** Every run's time, in the order they ran. */
  runsMs: number[]
  perSec: number
  /** The table (or the windows: closed and still open) holds exactly the expected counts. */
  correct: boolean
}

export interface TableBenchResult {
  events: number
  users: number
  plain: ScenarioResult
  windowed: ScenarioResult & { windows: number; ratio: number }
  join: ScenarioResult & { ratio: number }
}

interface Profile {
  userId: string
  plan: string
}

function kafka(brokers: string[]): Kafka {
  return new Kafka({ clientId: 'mephisto-bench-tables', brokers, logLevel: logLevel.ERROR })
}

/** `n` hits keyed by user, record timestamps = the hit's; and one profile per user on `profiles`. */
async function fill(brokers: string[], topic: string, profiles: string, hits: Hit[]): Promise<void> {
  const k = kafka(brokers)
  const admin = k.admin()
  await admin.connect()
  await admin.createTopics({
    topics: [
      { topic, numPartitions: PARTITIONS },
      { topic: profiles, numPartitions: PARTITIONS },
    ],
    waitForLeaders: true,
  })
  await admin.disconnect()
  const producer = k.producer()
  await producer.connect()
  const chunk = 10_000
  for (let i = 0; i < hits.length; i += chunk) {
    await producer.send({
      topic,
      messages: hits.slice(i, i + chunk).map((h) => ({
        key: h.userId,
        value: JSON.stringify(h),
        timestamp: String(h.timestamp),
      })),
    })
  }
  await producer.send({
    topic: profiles,
    messages: Array.from({ length: USERS }, (_, i) => ({
      key: `user-${i}`,
      value: JSON.stringify({ userId: `user-${i}`, plan: i % 3 === 0 ? 'pro' : 'free' } satisfies Profile),
    })),
  })
  await producer.disconnect()
}

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

function newApp(id: string, brokers: string[]): App {
  return new App({ id, broker: brokers, logger: 'warn', web: false })
}

/**
 * The join's profiles, loaded into the table `profiles` of app `id` by an app that reads the
 * profiles topic and stops: the join app (same id) recovers the table from its changelog before
 * its first hit, so every hit finds its profile.
 */
async function loadProfiles(id: string, brokers: string[], profiles: string): Promise<void> {
  const app = newApp(id, brokers)
  const source = app.topic<string, Profile>(profiles, { partitions: PARTITIONS })
  const table = app.table<string, Profile | undefined>('profiles', { partitions: PARTITIONS })
  let loaded = 0
  let done!: () => void
  const finished = new Promise<void>((r) => {
    done = r
  })
  app.agent(source, async (stream) => {
    for await (const [user, profile] of stream.items()) {
      table.set(user, profile)
      if (++loaded === USERS) done()
    }
  })
  await app.start()
  await withTimeout(finished, 60_000, () => `loaded ${loaded} of ${USERS} profiles`)
  await app.stop()
}

/** One run of one scenario: its own app id and group, reading `topic` from the beginning. */
async function runOnce(
  scenario: TableScenario,
  brokers: string[],
  topic: string,
  profiles: string,
  hits: Hit[],
  run: number,
): Promise<{ ms: number; correct: boolean; windows: number }> {
  const id = `bench-${scenario}-${topic}-${run}`
  if (scenario === 'join') await loadProfiles(id, brokers, profiles)
  const app = newApp(id, brokers)
  const source = app.topic<string, Hit>(topic, { partitions: PARTITIONS })
  const n = hits.length
  let seen = 0
  let joined = 0
  let first = 0
  let done!: () => void
  const finished = new Promise<void>((r) => {
    done = r
  })
  const tick = (): void => {
    if (first === 0) first = performance.now()
    if (++seen === n) done()
  }
  // Only the scenario's own tables, so that none pays for another's changelog.
  const counts =
    scenario === 'windowed'
      ? undefined
      : app.table<string, number>('counts', { default: () => 0, partitions: PARTITIONS })
  const closed = new Map<string, number>()
  const perMinute =
    scenario === 'windowed'
      ? app
          .table<string, number>('per-minute', {
            default: () => 0,
            partitions: PARTITIONS,
            onWindowClose: (user: string, window: Window, c: number) => {
              closed.set(`${user}@${window.start}`, c)
            },
          })
          .tumbling(MINUTE)
          .relativeToField((hit: Hit) => hit.timestamp)
      : undefined
  const profileTable =
    scenario === 'join'
      ? app.table<string, Profile | undefined>('profiles', { partitions: PARTITIONS })
      : undefined
  app.agent(
    source,
    async (stream) => {
      if (perMinute) {
        for await (const hit of stream) {
          await perMinute.update(hit.userId, (c) => c + 1)
          tick()
        }
      } else if (profileTable) {
        for await (const [hit, profile] of stream.join(profileTable)) {
          if (profile?.userId === hit.userId) joined++
          counts!.set(hit.userId, (await counts!.get(hit.userId)) + 1)
          tick()
        }
      } else {
        for await (const hit of stream) {
          counts!.set(hit.userId, (await counts!.get(hit.userId)) + 1)
          tick()
        }
      }
    },
    { name: scenario },
  )
  await app.start()
  await withTimeout(finished, 300_000, () => `${scenario}: ${seen} of ${n} events`)
  const ms = performance.now() - first

  let correct: boolean
  let windows = 0
  if (perMinute) {
    const want = new Map<string, number>()
    for (const h of hits) {
      const k = `${h.userId}@${Math.floor(h.timestamp / MINUTE) * MINUTE}`
      want.set(k, (want.get(k) ?? 0) + 1)
    }
    const got = new Map(closed)
    for await (const [user, window, v] of perMinute.entries()) got.set(`${user}@${window.start}`, v)
    windows = want.size
    correct = got.size === want.size && [...want].every(([k, v]) => got.get(k) === v)
  } else {
    const want = new Map<string, number>()
    for (const h of hits) want.set(h.userId, (want.get(h.userId) ?? 0) + 1)
    correct = scenario !== 'join' || joined === n
    for (const [user, c] of want) if ((await counts!.get(user)) !== c) correct = false
  }
  await app.stop()
  return { ms, correct, windows }
}

/**
 * The plain table count, the tumbling 1-minute windowed count and the stream-table join, on one
 * pre-filled topic of `n` hits (100 users, 4 partitions), at-least-once, in three alternating runs.
 */
export async function tableBench(brokers: string[], n: number): Promise<TableBenchResult> {
  const topic = `bench-tables-${Date.now().toString(36)}`
  const profiles = `${topic}-profiles`
  const start = Math.floor(Date.now() / MINUTE) * MINUTE - 24 * 60 * MINUTE
  const hits = [...generateHits(n, { users: USERS, seed: 7, startTime: start, stepMs: STEP_MS })]
  await fill(brokers, topic, profiles, hits)
  const scenarios: TableScenario[] = ['plain', 'windowed', 'join']
  const runs = new Map<TableScenario, { ms: number; correct: boolean; windows: number }[]>()
  for (let run = 1; run <= RUNS; run++) {
    for (const s of scenarios) {
      const r = await runOnce(s, brokers, topic, profiles, hits, run)
      runs.set(s, [...(runs.get(s) ?? []), r])
    }
  }
  const best = (s: TableScenario): ScenarioResult & { windows: number } => {
    const rs = runs.get(s)!
    const ms = Math.min(...rs.map((r) => r.ms))
    return {
      ms,
      runsMs: rs.map((r) => Math.round(r.ms)),
      perSec: (n * 1000) / ms,
      correct: rs.every((r) => r.correct),
      windows: rs[0]!.windows,
    }
  }
  const { windows: _plainWindows, ...plain } = best('plain')
  const windowed = best('windowed')
  const { windows: _joinWindows, ...join } = best('join')
  return {
    events: n,
    users: USERS,
    plain,
    windowed: { ...windowed, ratio: windowed.perSec / plain.perSec },
    join: { ...join, ratio: join.perSec / plain.perSec },
  }
}
