import { join } from 'node:path'
import type { Broker } from './processes.js'
import { bounded, repoDir, sleep, WorkerProcess } from './processes.js'
import type { Names, Outcome, Stop } from './workload.js'
import {
  HUNG_EVENT_TIMEOUT_MS,
  hungHit,
  names,
  outcome,
  PARTITIONS,
  produce,
  tablePoisonHit,
  timeToProgress,
  transport,
  waitDone,
  workerEnv,
} from './workload.js'

export type Guarantee = 'at_least_once' | 'exactly_once'

export interface Result extends Outcome {
  scenario: string
  guarantee: Guarantee
  disruptions: number
  /** Time from each disruption until the group commits past where it was (ms). */
  recoverMs: number[]
  crashes: number
  /** In-process restarts of the workers (a worker rolled back and replaced; counted from logs). */
  restarts: number
  /** What the table's notes column shows: in-process restarts, what a disruption did. */
  notes: string[]
  /** Check failures, empty when the scenario passed. */
  failures: string[]
}

export interface Settings {
  broker: Broker
  long: boolean
  /** Random source, seeded, so a failing run can be replayed. */
  random: () => number
  log: (line: string) => void
  /** How long broker-restart keeps the broker down (ms), instead of its defaults. */
  brokerDownMs?: number
}

interface Run {
  n: Names
  guarantee: Guarantee
  workers: WorkerProcess[]
  recoverMs: number[]
  disruptions: number
  notes: string[]
}

/**
 * Runs the hit counter with `workers` processes, feeds it `events` at `rate`/s while `disrupt`
 * does its damage, waits for both stages to finish, stops the workers (SIGTERM) and compares.
 */
async function runScenario(
  s: Settings,
  scenario: string,
  guarantee: Guarantee,
  options: {
    workers: number
    events: number
    rate: number
    module?: string
    poison?: (seq: number) => { key: Buffer | null; value: Buffer } | undefined
    disrupt: (run: Run) => Promise<void>
    checks: (r: Result) => string[]
  },
): Promise<Result> {
  const n = names(scenario)
  const t = transport(s.broker.brokers)
  // Every stage is bounded: one that overruns fails the scenario with its name and the workers'
  // logs, and the suite goes on. A stuck stage must never hang CI.
  let stage = 'connecting'
  let stageStarted = Date.now()
  const enter = (name: string): void => {
    stage = name
    stageStarted = Date.now()
  }
  /** Enters stage `name` and waits for `p`, for `ms` at the most. */
  const within = <T>(name: string, ms: number, p: Promise<T>): Promise<T> => {
    enter(name)
    return bounded(name, ms, p)
  }
  const heartbeat = setInterval(() => {
    const secs = Math.round((Date.now() - stageStarted) / 1000)
    if (secs >= 60) s.log(`chaos: ${scenario} (${guarantee}) still ${stage} after ${secs} s`)
  }, 30_000)
  const stop: Stop = { stopped: false }
  let disrupting = true
  const workers: WorkerProcess[] = []
  const run: Run = { n, guarantee, workers, recoverMs: [], disruptions: 0, notes: [] }
  const result = (o: Outcome, failures: string[]): Result => {
    const restarts = workers.reduce((a, w) => a + w.restarts, 0)
    return {
      scenario,
      guarantee,
      disruptions: run.disruptions,
      recoverMs: run.recoverMs,
      crashes: workers.reduce((a, w) => a + w.unexpectedExits, 0),
      restarts,
      notes: [...(restarts > 0 ? [`${restarts} in-process restart(s)`] : []), ...run.notes],
      failures,
      ...o,
    }
  }
  const showLogs = (): void => {
    for (const w of workers)
      s.log(`--- ${w.name} stderr (tail)\n${w.log.slice(process.env.CHAOS_WORKER_LOG ? 0 : -3000)}`)
  }
  try {
    await within('connecting', 60_000, t.connect())
    // The input topic is the user's: created here, with room for the oversized poison pill.
    await within(
      'creating the input topic',
      60_000,
      t.admin.ensureTopics([
        { name: n.hits, partitions: PARTITIONS, config: { 'max.message.bytes': String(8 << 20) } },
      ]),
    )
    const env = workerEnv(n, s.broker.brokers, guarantee)
    const spec = { env, module: options.module ?? join(repoDir, 'apps/chaos/src/app.ts') }
    for (let i = 0; i < options.workers; i++) {
      workers.push(new WorkerProcess(`${scenario}/${guarantee}/w${i}`, spec))
    }
    enter('starting the workers')
    await Promise.all(workers.map((w) => w.start()))
    // Input flows until the disruptions are over, so every one of them happens under load.
    const produced = produce(
      () => t.producer(),
      n.hits,
      options.events,
      options.rate,
      options.poison,
      () => !disrupting,
      stop,
      s.log,
    )
    // Awaited below; a scenario that fails before then must not leave its rejection unhandled.
    produced.catch(() => {})
    const supervised = workers.map((w) => w.superviseUntil(() => !disrupting))
    await within('disrupting', s.long ? 60 * 60_000 : 8 * 60_000, options.disrupt(run))
    disrupting = false
    await within(
      'producing the rest of the input',
      (options.events / options.rate) * 1000 + 120_000,
      produced,
    )
    await within('restarting workers that crashed', 120_000, Promise.all(supervised))
    // Processes that crashed on their own were restarted by the supervisor; make sure all run.
    for (const w of workers) if (!w.running) await w.start()
    const done = await within('waiting for the workers to catch up', 150_000, waitDone(t, n, 120_000))
    if (!done) s.log(`${scenario}/${guarantee}: not caught up after 120 s`)
    enter('stopping the workers (SIGTERM)')
    for (const w of workers) await w.kill('SIGTERM')
    const r = result(await within('reading the outcome', 120_000, outcome(t, n)), [])
    if (!done) r.failures.push('did not finish processing within 120 s')
    const stuck = workers.reduce((a, w) => a + w.stuckStops, 0)
    if (stuck > 0) r.failures.push(`${stuck} worker stop(s) did not end within 90 s of SIGTERM`)
    const unclean = workers.reduce((a, w) => a + w.uncleanStops, 0)
    if (unclean > 0) r.failures.push(`${unclean} SIGTERM stop(s) exited with a code other than 0`)
    r.failures.push(...options.checks(r))
    if (r.failures.length > 0 || process.env.CHAOS_WORKER_LOG) showLogs()
    return r
  } catch (err) {
    s.log(`chaos: ${scenario} (${guarantee}) failed while ${stage}: ${(err as Error)?.stack ?? err}`)
    showLogs()
    return result(NO_OUTCOME, [`${stage}: ${(err as Error)?.message ?? err}`])
  } finally {
    clearInterval(heartbeat)
    disrupting = false
    stop.stopped = true
    for (const w of workers) await w.kill('SIGKILL').catch(() => {})
    await bounded('closing', 30_000, t.close()).catch(() => {})
  }
}

/** The outcome of a scenario that did not get as far as reading one. */
export const NO_OUTCOME: Outcome = {
  events: 0,
  poison: 0,
  expected: 0,
  counted: 0,
  losses: 0,
  duplicates: 0,
  outputs: 0,
  outputDuplicates: 0,
  outputLosses: 0,
  dlq: 0,
  dlqWithReason: 0,
  dlqMissing: 0,
  dlqUnexpected: 0,
  dlqTwice: [],
  countDlq: 0,
  countDlqEncodeNamed: 0,
  countDlqTimedOut: 0,
  markerCounted: 0,
}

/**
 * Zero losses always; exact (no duplicate count, output or dead letter) under exactly-once or
 * when asked. Every poison pill dead-lettered (at least once), and nothing else.
 */
function exactness(r: Result, exact: boolean): string[] {
  const f: string[] = []
  if (r.losses > 0) f.push(`${r.losses} count(s) lost`)
  if (r.outputLosses > 0) f.push(`${r.outputLosses} output(s) lost`)
  if (exact && r.duplicates > 0) f.push(`${r.duplicates} duplicate count(s)`)
  if (exact && r.outputDuplicates > 0) f.push(`${r.outputDuplicates} duplicate output(s)`)
  if (r.dlqMissing > 0) f.push(`${r.dlqMissing} of ${r.poison} poison pill(s) not dead-lettered`)
  if (r.dlqUnexpected > 0) f.push(`${r.dlqUnexpected} dead letter(s) of records that are not poison`)
  if (exact && r.dlq !== r.poison) f.push(`${r.dlq} dead letter(s) for ${r.poison} poison pill(s)`)
  if (!exact && r.dlq > r.poison) r.notes.push(`${r.dlq - r.poison} dead letter(s) written twice`)
  // Where the copies sit (dead-letter partition@offset) and when each was made: the clue to why.
  if (r.dlqTwice.length > 0)
    process.stderr.write(`chaos: dead letters written twice:\n  ${r.dlqTwice.join('\n  ')}\n`)
  return f
}

/** kill -9 of the only worker at random moments; a supervisor starts a new one each time. */
export function killNine(s: Settings, guarantee: Guarantee): Promise<Result> {
  const kills = s.long ? 20 : 3
  return runScenario(s, 'kill9', guarantee, {
    workers: 1,
    events: kills * 3_500,
    rate: 1_200,
    disrupt: async (run) => {
      const t = transport(s.broker.brokers)
      await t.connect()
      try {
        for (let i = 0; i < kills; i++) {
          await sleep(800 + s.random() * 1_700)
          const w = run.workers[0]!
          await w.kill('SIGKILL')
          const at = Date.now()
          run.disruptions++
          await w.start()
          run.recoverMs.push(await timeToProgress(t, run.n, at, 60_000))
        }
      } finally {
        await t.close()
      }
    },
    checks: (r) => {
      const f = exactness(r, guarantee === 'exactly_once')
      if (r.disruptions < kills) f.push(`only ${r.disruptions} of ${kills} kills happened`)
      return f
    },
  })
}

/** Two or three workers in one group; one at a time is killed (failover) and later rejoins. */
export function failover(s: Settings, guarantee: Guarantee, workers: number): Promise<Result> {
  const kills = s.long ? 6 : 2
  return runScenario(s, `failover${workers}`, guarantee, {
    workers,
    events: kills * 6_000,
    rate: 1_500,
    disrupt: async (run) => {
      const t = transport(s.broker.brokers)
      await t.connect()
      try {
        for (let i = 0; i < kills; i++) {
          await sleep(1_500 + s.random() * 1_500)
          const w = run.workers[i % run.workers.length]!
          await w.kill('SIGKILL')
          const at = Date.now()
          run.disruptions++
          // The survivors take over once the session of the dead one times out.
          run.recoverMs.push(await timeToProgress(t, run.n, at, 90_000))
          await w.start()
        }
      } finally {
        await t.close()
      }
    },
    checks: (r) => exactness(r, guarantee === 'exactly_once'),
  })
}

/**
 * The broker stopped mid-run and started again; no worker may exit on it. The
 * outages are longer than kafkajs' retries (about 10 s with its defaults), so clients do fail
 * and must recover; the long mode adds a short blip that the retries ride out.
 */
export function brokerRestart(s: Settings, guarantee: Guarantee): Promise<Result> {
  const outages = s.brokerDownMs ? [s.brokerDownMs] : s.long ? [3_000, 20_000] : [15_000]
  return runScenario(s, 'broker-restart', guarantee, {
    workers: 2,
    events: 20_000,
    rate: 1_500,
    disrupt: async (run) => {
      for (const downMs of outages) {
        await sleep(3_000)
        const at = Date.now()
        run.disruptions++
        await s.broker.bounce(downMs)
        const t = transport(s.broker.brokers)
        await t.connect()
        try {
          run.recoverMs.push(await timeToProgress(t, run.n, at, 120_000))
        } finally {
          await t.close()
        }
      }
    },
    checks: (r) => {
      const f = exactness(r, guarantee === 'exactly_once')
      // A worker rides out an outage: it restarts itself in-process, it does not exit.
      if (r.crashes > 0) f.push(`a worker exited ${r.crashes} time(s) during the outage`)
      return f
    },
  })
}

/** Records the hit counter's schema refuses, one of each kind the `poison` scenario feeds. */
const POISON_KINDS: (() => { key: Buffer | null; value: Buffer })[] = [
  () => ({ key: Buffer.from('user-1'), value: Buffer.from('{"userId": "user-1", "hits": ') }),
  () => ({
    key: Buffer.from('user-2'),
    value: Buffer.from(JSON.stringify({ userId: 'user-2', hits: 'many' })),
  }),
  () => ({ key: Buffer.from('user-3'), value: Buffer.alloc(2 << 20, 0x61) }),
  () => ({
    key: Buffer.from([0x75, 0xff, 0xfe]),
    value: Buffer.from(JSON.stringify({ userId: 'user-4', hits: 30, timestamp: 1, seq: -1 })),
  }),
]

/** Poison pills among good events: each must end in the DLQ with its reason; no worker stops. */
export function poison(s: Settings, guarantee: Guarantee): Promise<Result> {
  return runScenario(s, 'poison', guarantee, {
    workers: 1,
    events: 12_000,
    rate: 3_000,
    poison: (seq) =>
      seq % 500 === 250 ? POISON_KINDS[((seq / 500) % POISON_KINDS.length) | 0]!() : undefined,
    disrupt: async () => {},
    checks: (r) => {
      const f = exactness(r, true)
      if (r.dlqWithReason !== r.dlq) f.push(`${r.dlq - r.dlqWithReason} dead letter(s) without a reason`)
      if (r.crashes > 0) f.push(`the worker stopped ${r.crashes} time(s)`)
      return f
    },
  })
}

/**
 * The dead-letter topic's `max.message.bytes` during dlq-outage: under any dead letter (its
 * headers alone are longer), so the broker refuses each with MESSAGE_TOO_LARGE, which kafkajs
 * does not retry. Not lower: the transaction markers the coordinator writes (about 80 bytes) must
 * still fit, or Kafka takes the refused marker as fatal and that transactional id stays wedged
 * (CONCURRENT_TRANSACTIONS on every later start) until the broker restarts.
 */
const DLQ_OUTAGE_MAX_BYTES = 256

/**
 * The dead-letter topic unwritable for a while (see DLQ_OUTAGE_MAX_BYTES) while poison pills
 * arrive. A dead letter that cannot be written fails its event: retried with the agent's backoff,
 * then the worker rolls back and restarts in-process, and dead-letters it once the topic takes
 * records again. No worker process may exit; the restarts are reported in the notes.
 */
export function dlqOutage(s: Settings, guarantee: Guarantee): Promise<Result> {
  const outageMs = s.long ? 20_000 : 10_000
  // The small kinds: malformed JSON, a value the schema refuses, a key that is not UTF-8.
  const kinds = [POISON_KINDS[0]!, POISON_KINDS[1]!, POISON_KINDS[3]!]
  let refused = 0
  return runScenario(s, 'dlq-outage', guarantee, {
    workers: 1,
    events: 15_000,
    rate: 1_500,
    poison: (seq) => (seq % 200 === 100 ? kinds[((seq / 200) % kinds.length) | 0]!() : undefined),
    disrupt: async (run) => {
      const t = transport(s.broker.brokers)
      await t.connect()
      try {
        // The worker creates its dead-letter topic when it starts.
        while (!(await t.admin.listTopics()).includes(run.n.dlq)) await sleep(200)
        const before = await s.broker.topicConfig(run.n.dlq, 'max.message.bytes')
        if (!before) throw new Error(`${run.n.dlq} has no max.message.bytes of its own`)
        await sleep(3_000)
        const tooLarge = (): number => run.workers.reduce((a, w) => a + w.tooLargeErrors, 0)
        const refusedBefore = tooLarge()
        try {
          await s.broker.setTopicConfig(run.n.dlq, 'max.message.bytes', String(DLQ_OUTAGE_MAX_BYTES))
          run.disruptions++
          await sleep(outageMs)
        } finally {
          await s.broker.setTopicConfig(run.n.dlq, 'max.message.bytes', before)
        }
        const at = Date.now()
        refused = tooLarge() - refusedBefore
        run.notes.push(
          `DLQ unwritable ${outageMs / 1000} s: ${refused} dead-letter write(s) refused as too large`,
        )
        // From the end of the outage: the worker must get past the poison it could not write.
        run.recoverMs.push(await timeToProgress(t, run.n, at, 120_000))
      } finally {
        await t.close()
      }
    },
    checks: (r) => {
      const f = exactness(r, guarantee === 'exactly_once')
      if (r.dlqWithReason !== r.dlq) f.push(`${r.dlq - r.dlqWithReason} dead letter(s) without a reason`)
      if (r.crashes > 0) f.push(`a worker exited ${r.crashes} time(s)`)
      if (refused === 0) f.push('no dead-letter send was refused during the outage')
      if (r.restarts === 0) f.push('no in-process restart: the dead-letter outage did not fail any event')
      return f
    },
  })
}

/**
 * A value the table cannot encode: `tableValueApp.ts` counts as the hit counter does, but writes
 * `{ n: 10n }` (JSON cannot hold a BigInt) for the hits of the table-poison users. Only those
 * events may fail: dead-lettered from count_topic with ENCODE naming the table and the key, every
 * other event counted and committed, commits moving all along, no worker exit.
 */
export function poisonTableValue(s: Settings, guarantee: Guarantee): Promise<Result> {
  const events = 12_000
  const rate = 1_500
  return runScenario(s, 'poison-table-value', guarantee, {
    workers: 1,
    events,
    rate,
    module: join(repoDir, 'apps/chaos/src/tableValueApp.ts'),
    poison: (seq) => (seq % 600 === 300 ? tablePoisonHit(seq, (seq / 600) | 0) : undefined),
    disrupt: async (run) => {
      // Commits must move while table-poison hits keep failing, not only at the end.
      const t = transport(s.broker.brokers)
      await t.connect()
      try {
        await sleep((events / rate) * 500)
        const committed = async (): Promise<number> =>
          (await t.admin.groupOffsets(run.n.id, run.n.count).catch(() => new Map<number, number>())).get(0) ??
          -1
        const first = await committed()
        const at = Date.now()
        let moved = -1
        while (moved < 0 && Date.now() < at + 30_000) {
          await sleep(200)
          if ((await committed()) > first) moved = Date.now() - at
        }
        run.notes.push(
          moved >= 0
            ? `count_topic commits moved mid-run (in ${(moved / 1000).toFixed(1)} s)`
            : 'count_topic commits did not move mid-run',
        )
      } finally {
        await t.close()
      }
    },
    checks: (r) => {
      // Nothing rolls back here, so even at-least-once must count (and dead-letter) exactly.
      const f = exactness(r, true)
      if (r.countDlqEncodeNamed !== r.countDlq)
        f.push(
          `${r.countDlq - r.countDlqEncodeNamed} table dead letter(s) without ENCODE naming table and key`,
        )
      if (r.countDlq === 0) f.push('no table-poison hit was dead-lettered')
      if (r.notes.includes('count_topic commits did not move mid-run')) f.push('commits stopped mid-run')
      // A value that cannot be encoded fails its event at set(), never a commit.
      if (r.restarts > 0) f.push(`${r.restarts} in-process restart(s)`)
      if (r.crashes > 0) f.push(`the worker stopped ${r.crashes} time(s)`)
      return f
    },
  })
}

/** The longest count_topic commits may stand still in hung-agent while its hung events time out. */
const HUNG_PAUSE_LIMIT_MS = 15_000

/**
 * An agent that hangs: `hungAgentApp.ts` counts as the hit counter does, but its counting agent
 * never finishes the hits of the hung users (some of them wake long after and try a table
 * write). With `eventTimeoutMs` each hung event fails alone: dead-lettered from count_topic with
 * EVENT_TIMEOUT while a new actor goes on, its late write refused, every other event counted,
 * commits moving all along, no restart, no worker exit.
 */
export function hungAgent(s: Settings, guarantee: Guarantee): Promise<Result> {
  const watchMs = s.long ? 60_000 : 20_000
  let workers: WorkerProcess[] = []
  return runScenario(s, 'hung-agent', guarantee, {
    workers: 1,
    events: 15_000,
    rate: 1_500,
    module: join(repoDir, 'apps/chaos/src/hungAgentApp.ts'),
    // One hung hit in 4000 (one every 2.7 s): about one timeout at a time.
    poison: (seq) => (seq % 4_000 === 2_000 ? hungHit(seq, (seq / 4_000) | 0) : undefined),
    disrupt: async (run) => {
      workers = run.workers
      // Input flows for the whole watch: how long did the commits stand still while events hung?
      const t = transport(s.broker.brokers)
      await t.connect()
      try {
        const offsets = (topic: string): Promise<Map<number, number>> =>
          t.admin.groupOffsets(run.n.id, topic).catch(() => new Map<number, number>())
        const last = new Map<string, { offset: number; at: number }>()
        const longest = new Map<string, number>()
        let countMoves = 0
        const started = Date.now()
        const see = (name: string, offset: number, now: number): boolean => {
          if (offset < 0) return false
          const before = last.get(name)
          if (before && offset <= before.offset) return false
          if (before) longest.set(name, Math.max(longest.get(name) ?? 0, now - before.at))
          last.set(name, { offset, at: now })
          return before !== undefined
        }
        while (Date.now() < started + watchMs) {
          await sleep(250)
          const now = Date.now()
          if (see('count', (await offsets(run.n.count)).get(0) ?? -1, now)) countMoves++
          for (const [p, o] of await offsets(run.n.hits)) see(`input ${p}`, o, now)
        }
        const end = Date.now()
        // A pause still going on at the end of the watch counts too.
        for (const [name, { at }] of last) longest.set(name, Math.max(longest.get(name) ?? 0, end - at))
        const countPause = last.has('count') ? (longest.get('count') ?? 0) : watchMs
        const inputPause = Math.max(
          0,
          ...[...longest].filter(([name]) => name.startsWith('input')).map(([, ms]) => ms),
        )
        run.notes.push(
          `count_topic commits moved ${countMoves} time(s) in ${watchMs / 1000} s, longest pause ` +
            `${(countPause / 1000).toFixed(1)} s (input ${(inputPause / 1000).toFixed(1)} s)`,
        )
        if (countMoves < 2 || countPause > HUNG_PAUSE_LIMIT_MS)
          run.notes.push(`count_topic commits stalled (limit ${HUNG_PAUSE_LIMIT_MS / 1000} s)`)
      } finally {
        await t.close()
      }
    },
    checks: (r) => {
      // Nothing rolls back here, but at-least-once promises no more than no losses.
      const f = exactness(r, guarantee === 'exactly_once')
      const late = {
        refused: workers.reduce((a, w) => a + w.lateWritesRefused, 0),
        notRefused: workers.reduce((a, w) => a + w.lateWritesNotRefused, 0),
      }
      r.notes.unshift(
        `${r.countDlqTimedOut} of ${r.poison} hung event(s) dead-lettered with EVENT_TIMEOUT ` +
          `(eventTimeoutMs ${HUNG_EVENT_TIMEOUT_MS}); ${late.refused} late table write(s) refused`,
      )
      if (r.countDlq === 0) f.push('no hung event was dead-lettered')
      if (r.countDlqTimedOut !== r.countDlq)
        f.push(`${r.countDlq - r.countDlqTimedOut} dead letter(s) without EVENT_TIMEOUT naming the event`)
      if (r.markerCounted > 0) f.push(`${r.markerCounted} count(s) of hung users reached the table`)
      if (late.notRefused > 0) f.push(`${late.notRefused} late table write(s) not refused with EVENT_TIMEOUT`)
      if (late.refused === 0) f.push('no late table write was tried: no hung actor woke before the stop')
      if (r.notes.some((note) => note.startsWith('count_topic commits stalled'))) f.push('commits stalled')
      // A timed-out event fails alone: no rollback, no exit.
      if (r.restarts > 0) f.push(`${r.restarts} in-process restart(s)`)
      if (r.crashes > 0) f.push(`the worker stopped ${r.crashes} time(s)`)
      return f
    },
  })
}

/** An agent slower than the consumer session timeout on some events. */
export function slowAgent(s: Settings, guarantee: Guarantee): Promise<Result> {
  return runScenario(s, 'slow-agent', guarantee, {
    workers: 1,
    events: 10_000,
    rate: 1_500,
    module: join(repoDir, 'apps/chaos/src/slowApp.ts'),
    disrupt: async () => {},
    checks: (r) => {
      const f = exactness(r, guarantee === 'exactly_once')
      if (r.crashes > 0) f.push(`the worker stopped ${r.crashes} time(s)`)
      return f
    },
  })
}

/** SIGTERM under load, then a restart: a graceful stop commits, so even at-least-once is exact. */
export function sigterm(s: Settings, guarantee: Guarantee): Promise<Result> {
  const stops = s.long ? 6 : 2
  return runScenario(s, 'sigterm', guarantee, {
    workers: 1,
    events: stops * 5_000,
    rate: 1_500,
    disrupt: async (run) => {
      const t = transport(s.broker.brokers)
      await t.connect()
      try {
        for (let i = 0; i < stops; i++) {
          await sleep(1_500 + s.random() * 1_500)
          const w = run.workers[0]!
          const code = await w.kill('SIGTERM')
          if (code !== 0) s.log(`sigterm: the worker exited with ${code}:\n${w.log.slice(-3000)}`)
          const at = Date.now()
          run.disruptions++
          await w.start()
          run.recoverMs.push(await timeToProgress(t, run.n, at, 60_000))
        }
      } finally {
        await t.close()
      }
    },
    checks: (r) => exactness(r, true),
  })
}
