// Benchmarks, as ratios taken in one run on one machine. Prints a table and writes JSON to
// bench-results/. Never a timed test: run it by hand (or from CI) for the figures.
//   pnpm bench [--events 200000] [--messages 1000000] [--only memory|kafka|pool] [--clients kafkajs,platformatic]
//              [--skip consumer,hits,eos64,restart,tables,recovery,pool] [--hit-events 100000] [--rounds 3]
// The Kafka benchmarks use KAFKA_BROKERS, or start docker/kafka-local for the run.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import type { HitCounterKafkaResult, KafkaClient } from './kafka.js'
import { consumerBench, hitCounterKafkaBench } from './kafka.js'
import { memoryBench } from './memory.js'
import type { PoolSize } from './pool.js'
import { poolBench } from './pool.js'
import { recoveryBench } from './recovery.js'
import { restartBench } from './restart.js'
import { tableBench } from './tables.js'

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    events: { type: 'string', default: '200000' },
    messages: { type: 'string', default: '1000000' },
    'hit-events': { type: 'string', default: '100000' },
    /** Rounds of the hit counter on each client, alternating; the figures are medians. */
    rounds: { type: 'string', default: '3' },
    'table-events': { type: 'string', default: '500000' },
    'pool-events': { type: 'string', default: '1000000' },
    'table-keys': { type: 'string', default: '1000000' },
    tail: { type: 'string', default: '10000' },
    only: { type: 'string' },
    skip: { type: 'string', default: '' },
    /** The Kafka clients the consumer, hit-counter and restart benchmarks run on, in turn. */
    clients: { type: 'string', default: 'kafkajs,platformatic' },
  },
})
const events = Number(values.events)
const skip = new Set(values.skip.split(',').filter(Boolean))
// `--only pool`: the Kafka benchmarks, the worker pool alone.
const kafkaRuns = (name: string): boolean => !skip.has(name) && (values.only !== 'pool' || name === 'pool')
const results: Record<string, unknown> = { node: process.version, date: new Date().toISOString() }
const rows: string[][] = []
const fmt = (n: number): string => `${Math.round(n).toLocaleString('en-US')}/s`
/** The run of median throughput (the upper middle one of an even count). */
const median = (runs: HitCounterKafkaResult[]): HitCounterKafkaResult =>
  [...runs].sort((a, b) => a.perSec - b.perSec)[Math.floor(runs.length / 2)]!
const perSecList = (runs: HitCounterKafkaResult[]): string => runs.map((r) => fmt(r.perSec)).join(', ')

if (!values.only || values.only === 'memory') {
  await memoryBench(Math.min(events, 20_000)) // warm-up: JIT both paths before measuring
  const r = await memoryBench(events)
  results.memory = r
  rows.push([
    'hit counter, memory broker',
    fmt(r.mephistoPerSec),
    `${fmt(r.plainPerSec)} plain async loop`,
    `${r.ratio.toFixed(2)}x`,
    r.countsMatch ? 'yes' : 'NO',
  ])
}

if (!values.only || values.only === 'kafka' || values.only === 'pool') {
  const root = resolve(import.meta.dirname, '../../..')
  let brokers = process.env.KAFKA_BROKERS
  let dir: string | undefined
  if (!brokers) {
    dir = mkdtempSync(join(tmpdir(), 'mephisto-bench-kafka-'))
    process.stdout.write('starting a local Kafka broker (docker/kafka-local)...\n')
    const r = spawnSync('bash', [join(root, 'docker/kafka-local/kafka-local.sh'), 'start', '--dir', dir], {
      encoding: 'utf8',
    })
    brokers = /KAFKA_BROKERS=(\S+)/.exec(readFileSync(join(dir, 'state.env'), 'utf8'))?.[1]
    if (r.status !== 0 || !brokers)
      throw new Error(`could not start a Kafka broker:\n${r.stdout}\n${r.stderr}`)
  }
  try {
    const list = brokers.split(',')
    const clients = values.clients.split(',').filter(Boolean) as KafkaClient[]
    const hitsBy = new Map<KafkaClient, { h: HitCounterKafkaResult[]; eos: HitCounterKafkaResult[] }>()
    for (const client of clients) {
      if (kafkaRuns('consumer')) {
        const c = await consumerBench(list, Number(values.messages), client)
        results[client === 'kafkajs' ? 'consumer' : `consumer-${client}`] = c
        rows.push([
          `stateless agent vs raw ${client} loop, ${client} transport`,
          fmt(c.mephistoPerSec),
          `${fmt(c.rawPerSec)} raw ${client}`,
          `${c.ratio.toFixed(2)}x`,
          'yes',
        ])
        rows.push([
          '  same, time to the first record',
          `${(c.mephistoStartMs / 1000).toFixed(2)} s`,
          `${(c.rawStartMs / 1000).toFixed(2)} s raw ${client}`,
          '',
          '',
        ])
      }
      if (kafkaRuns('eos64')) {
        const e = await hitCounterKafkaBench(list, Number(values['hit-events']), 'exactly_once', client, 64)
        results[`hitCounterKafkaExactlyOnce64-${client}`] = e
        rows.push([
          `hit counter over a backlog, exactly_once, 64 input partitions, ${client} transport`,
          fmt(e.perSec),
          `${e.producers} transactional producer(s) in the worker`,
          '',
          e.countsMatch ? 'yes' : 'NO',
        ])
      }
      if (kafkaRuns('restart')) {
        const r = await restartBench(list, client)
        results[`restart-${client}`] = r
        rows.push([
          `kill -9 and restart of the same worker, ${client} transport: to the first record`,
          `${(r.medianMs / 1000).toFixed(2)} s`,
          `runs ${r.runs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`,
          '',
          r.runs.every((ms) => ms >= 0) ? 'yes' : 'NO',
        ])
      }
    }
    // The hit counter in rounds, the clients alternating within each, so that a slow moment of the
    // machine or the broker falls on both: each figure is the median of its rounds.
    const rounds = Math.max(1, Number(values.rounds))
    for (let round = 0; round < rounds && kafkaRuns('hits'); round++) {
      for (const client of clients) {
        const h = await hitCounterKafkaBench(list, Number(values['hit-events']), 'at_least_once', client)
        const eos = await hitCounterKafkaBench(list, Number(values['hit-events']), 'exactly_once', client)
        const runs = hitsBy.get(client) ?? { h: [], eos: [] }
        runs.h.push(h)
        runs.eos.push(eos)
        hitsBy.set(client, runs)
      }
    }
    for (const [client, runs] of hitsBy) {
      const h = median(runs.h)
      const eos = median(runs.eos)
      const counted = (all: HitCounterKafkaResult[]): string =>
        all.every((r) => r.countsMatch) ? 'yes' : 'NO'
      results[client === 'kafkajs' ? 'hitCounterKafka' : `hitCounterKafka-${client}`] = {
        ...h,
        rounds: runs.h,
      }
      results[client === 'kafkajs' ? 'hitCounterKafkaExactlyOnce' : `hitCounterKafkaExactlyOnce-${client}`] =
        {
          ...eos,
          rounds: runs.eos,
        }
      rows.push([
        `hit counter over a backlog, Kafka, ${client} transport`,
        fmt(h.perSec),
        `${h.events.toLocaleString('en-US')} events, median of ${perSecList(runs.h)}`,
        '',
        counted(runs.h),
      ])
      rows.push([
        `hit counter over a backlog, Kafka, exactly_once, ${client} transport`,
        fmt(eos.perSec),
        `median of ${perSecList(runs.eos)}`,
        `${(eos.perSec / h.perSec).toFixed(2)}x`,
        counted(runs.eos),
      ])
    }
    const kj = hitsBy.get('kafkajs')
    const pf = hitsBy.get('platformatic')
    if (kj && pf) {
      const ratios = (a: HitCounterKafkaResult[], b: HitCounterKafkaResult[]): string =>
        a.map((r, i) => `${(r.perSec / b[i]!.perSec).toFixed(2)}`).join(', ')
      rows.push([
        'hit counter, platformatic transport over kafkajs transport (medians)',
        `${(median(pf.h).perSec / median(kj.h).perSec).toFixed(2)}x at_least_once`,
        `${(median(pf.eos).perSec / median(kj.eos).perSec).toFixed(2)}x exactly_once`,
        `rounds ${ratios(pf.h, kj.h)} / ${ratios(pf.eos, kj.eos)}`,
        [...pf.h, ...kj.h, ...pf.eos, ...kj.eos].every((r) => r.countsMatch) ? 'yes' : 'NO',
      ])
    }
    if (kafkaRuns('tables')) {
      const t = await tableBench(list, Number(values['table-events']))
      results.tables = t
      rows.push([
        'windowed count (tumbling 1 min, event time), Kafka',
        fmt(t.windowed.perSec),
        `${fmt(t.plain.perSec)} plain table count`,
        `${t.windowed.ratio.toFixed(2)}x`,
        t.windowed.correct && t.plain.correct ? 'yes' : 'NO',
      ])
      rows.push([
        'stream-table join, then the count, Kafka',
        fmt(t.join.perSec),
        `${fmt(t.plain.perSec)} plain table count`,
        `${t.join.ratio.toFixed(2)}x`,
        t.join.correct && t.plain.correct ? 'yes' : 'NO',
      ])
    }
    if (kafkaRuns('recovery')) {
      const rec = await recoveryBench(list, Number(values['table-keys']), Number(values.tail))
      results.recovery = rec
      const ok = rec.valuesMatch && rec.rocksdbReplayed === rec.tail ? 'yes' : 'NO'
      rows.push([
        `restore, ${rec.keys.toLocaleString('en-US')}-key table`,
        `RocksDB ${(rec.rocksdbRestoreMs / 1000).toFixed(2)} s (${rec.rocksdbReplayed} replayed)`,
        `full replay ${(rec.fullRestoreMs / 1000).toFixed(2)} s (${rec.fullReplayed})`,
        `${rec.ratio.toFixed(1)}x faster`,
        ok,
      ])
      rows.push([
        '  same, start() to ready',
        `RocksDB ${(rec.rocksdbMs / 1000).toFixed(2)} s`,
        `full replay ${(rec.fullMs / 1000).toFixed(2)} s`,
        `${rec.startRatio.toFixed(1)}x faster`,
        ok,
      ])
    }
    if (kafkaRuns('pool')) {
      const p = await poolBench(list, Number(values['pool-events']))
      results.pool = p
      const ok = p.one.correct && p.two.correct ? 'yes' : 'NO'
      rows.push([
        'hit counter, worker --workers 2 vs 1, settled, Kafka',
        fmt(p.two.settledPerSec),
        `${fmt(p.one.settledPerSec)} --workers 1`,
        `${p.settledRatio.toFixed(2)}x`,
        ok,
      ])
      rows.push([
        '  same, from the command start',
        fmt(p.two.wallPerSec),
        `${fmt(p.one.wallPerSec)} --workers 1`,
        `${p.wallRatio.toFixed(2)}x`,
        ok,
      ])
      const ready = (s: PoolSize): string =>
        `${(Math.min(...s.runs.map((r) => r.readyMs)) / 1000).toFixed(1)} s`
      rows.push(['  same, command start to ready', ready(p.two), `${ready(p.one)} --workers 1`, '', ''])
    }
  } finally {
    if (dir) {
      spawnSync('bash', [join(root, 'docker/kafka-local/kafka-local.sh'), 'stop', '--dir', dir], {
        stdio: 'ignore',
      })
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const header = ['benchmark', 'mephisto', 'baseline', 'mephisto/baseline', 'correct']
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
process.stdout.write(
  `\nNode ${process.version}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`,
)
for (const r of rows) process.stdout.write(`${line(r)}\n`)
mkdirSync('bench-results', { recursive: true })
const file = `bench-results/bench-${Date.now()}.json`
writeFileSync(file, JSON.stringify(results, null, 2))
process.stdout.write(`\nwrote ${file}\n`)
