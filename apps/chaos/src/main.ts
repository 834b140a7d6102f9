// The fault-injection suite: the hit counter through real worker processes on a real broker,
// checked against the input it was fed. `pnpm chaos` (short, for CI) or `pnpm chaos --long`.
// Options: --only <scenario>[,<scenario>...]   --guarantee at_least_once|exactly_once   --seed N
//          --broker-down <seconds>
import { cpus } from 'node:os'
import { Broker } from './processes.js'
import type { Guarantee, Result, Settings } from './scenarios.js'
import {
  brokerRestart,
  dlqOutage,
  failover,
  hungAgent,
  killNine,
  NO_OUTCOME,
  poison,
  poisonTableValue,
  sigterm,
  slowAgent,
} from './scenarios.js'

const args = process.argv.slice(2)
const long = args.includes('--long')
const optionValue = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const only = optionValue('--only')?.split(',')
const onlyGuarantee = optionValue('--guarantee')
if (onlyGuarantee !== undefined && onlyGuarantee !== 'at_least_once' && onlyGuarantee !== 'exactly_once') {
  process.stderr.write(`chaos: --guarantee takes at_least_once or exactly_once (got ${onlyGuarantee})\n`)
  process.exit(2)
}
const seed = Number(optionValue('--seed') ?? Date.now() % 100_000)
const brokerDown = optionValue('--broker-down')
const brokerDownMs = brokerDown === undefined ? undefined : Number(brokerDown) * 1000
if (brokerDownMs !== undefined && !(brokerDownMs > 0)) {
  process.stderr.write(`chaos: --broker-down takes seconds > 0 (got ${brokerDown})\n`)
  process.exit(2)
}

function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

type Plan = [string, Guarantee, (s: Settings, g: Guarantee) => Promise<Result>]
const both: Guarantee[] = ['at_least_once', 'exactly_once']
const plan: Plan[] = [
  ...both.map((g): Plan => ['kill9', g, killNine]),
  ...(long ? both : (['exactly_once'] as Guarantee[])).flatMap((g): Plan[] => [
    ['failover2', g, (s, gg) => failover(s, gg, 2)],
    ['failover3', g, (s, gg) => failover(s, gg, 3)],
    ['broker-restart', g, brokerRestart],
    ['slow-agent', g, slowAgent],
  ]),
  ['poison', 'exactly_once', poison],
  ...both.map((g): Plan => ['dlq-outage', g, dlqOutage]),
  ...both.map((g): Plan => ['poison-table-value', g, poisonTableValue]),
  ...both.map((g): Plan => ['hung-agent', g, hungAgent]),
  ...(long ? both : (['at_least_once'] as Guarantee[])).map((g): Plan => ['sigterm', g, sigterm]),
]

const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}
const unknown = only?.filter((name) => !plan.some(([planned]) => planned === name)) ?? []
if (unknown.length > 0) {
  log(
    `chaos: --only names no scenario ${unknown.join(', ')} (scenarios: ${[...new Set(plan.map(([n]) => n))].join(', ')})`,
  )
  process.exit(2)
}

const started = Date.now()
log(`chaos: ${long ? 'long' : 'short'} mode, seed ${seed}`)
const broker = await Broker.start()
log(`chaos: broker ${broker.brokers}`)
// Stopped from outside (CI's time limit, Ctrl-C): the broker runs in a session of its own, so
// stop it here. Worker processes share this process group and get the signal themselves.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    log(`chaos: ${signal}: stopping the broker and exiting`)
    void broker.stop().finally(() => process.exit(1))
  })
}
const results: Result[] = []
try {
  for (const [name, guarantee, fn] of plan) {
    if (only && !only.includes(name)) continue
    if (onlyGuarantee && guarantee !== onlyGuarantee) continue
    const t0 = Date.now()
    log(`chaos: ${name} (${guarantee}) ...`)
    const r = await fn(
      { broker, long, random: mulberry32(seed + results.length), log, ...(brokerDownMs && { brokerDownMs }) },
      guarantee,
    ).catch(
      (err: unknown): Result => ({
        scenario: name,
        guarantee,
        disruptions: 0,
        recoverMs: [],
        crashes: 0,
        restarts: 0,
        notes: [],
        failures: [`${(err as Error)?.message ?? err}`],
        ...NO_OUTCOME,
      }),
    )
    results.push(r)
    log(
      `chaos: ${name} (${guarantee}) ${r.failures.length === 0 ? 'ok' : `FAILED: ${r.failures.join('; ')}`} in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    )
  }
} finally {
  await broker.stop()
}

const ms = (list: number[]): string => {
  const ok = list.filter((x) => x >= 0)
  if (list.length === 0) return '–'
  const max = ok.length ? Math.max(...ok) : 0
  const mean = ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : 0
  const lost = list.length - ok.length
  return `${(mean / 1000).toFixed(1)} / ${(max / 1000).toFixed(1)}${lost ? ` (${lost} timed out)` : ''}`
}
const rows = results.map((r) =>
  [
    r.scenario,
    r.guarantee,
    r.disruptions,
    r.events,
    r.expected,
    r.counted,
    r.losses,
    r.duplicates,
    r.outputs,
    r.outputDuplicates,
    r.outputLosses,
    `${r.dlq} / ${r.poison}`,
    r.crashes,
    ms(r.recoverMs),
    r.notes.join('; ') || '–',
    r.failures.length === 0 ? 'pass' : `**FAIL**: ${r.failures.join('; ')}`,
  ].join(' | '),
)
const header =
  'scenario | guarantee | disruptions | events in | expected count | counted | losses | duplicates | outputs (read committed) | output dups | output losses | DLQ / poison | worker crashes | recover s (mean / max) | notes | result'
process.stdout.write(
  [
    '',
    `Chaos suite, ${long ? 'long' : 'short'} mode, ${new Date().toISOString().slice(0, 10)}, seed ${seed}, ` +
      `${cpus().length} cores, Node ${process.versions.node}, ${((Date.now() - started) / 1000).toFixed(0)} s`,
    '',
    `| ${header} |`,
    `|${header
      .split('|')
      .map(() => '---')
      .join('|')}|`,
    ...rows.map((r) => `| ${r} |`),
    '',
  ].join('\n'),
)
const failed = results.filter((r) => r.failures.length > 0)
if (failed.length > 0) {
  log(`chaos: ${failed.length} scenario(s) failed`)
  process.exit(1)
}
process.exit(0)
