// The hit counter end to end in one process: the producer sends random hits, the worker
// filters and counts them, and the live per-user counts are printed until every event is
// counted. On the embedded memory broker by default; on Kafka when KAFKA_BROKERS is set.
//   pnpm demo                      (memory broker, 20 000 events)
//   pnpm demo --count 100000 --users 10
//   KAFKA_BROKERS=127.0.0.1:9092 pnpm demo
import { parseArgs } from 'node:util'
import { expectedCounts, produceHits } from '@mephisto/hit-counter-producer'
import { createHitCounter } from './app.js'

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    count: { type: 'string', default: '20000' },
    users: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '60' },
    malformed: { type: 'string', default: '0.01' },
    rate: { type: 'string', default: '0' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  process.stdout.write(`pnpm demo [--count n] [--users n] [--seconds s] [--malformed share] [--rate n/s]
Runs producer and worker in one process and prints live per-user counts.
Broker: $KAFKA_BROKERS when set, else the embedded memory broker.
`)
  process.exit(0)
}
const count = Number(values.count)
const users = Number(values.users)
const seconds = Number(values.seconds)
for (const [k, v] of Object.entries({ count, users, seconds })) {
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${k} must be a positive number\n`)
    process.exit(2)
  }
}

// Unique per run on Kafka (app, topics), so a previous run's events, offsets and counts do not mix in.
const broker = process.env.KAFKA_BROKERS ?? 'memory://'
const runId = broker.startsWith('memory://') ? '' : `-${Date.now().toString(36)}`
const hitsTopic = `hit_count${runId}`
const { app, counts, countHits } = createHitCounter({
  broker,
  id: `hit-counter${runId}`,
  hitsTopic,
  countTopic: `count_topic${runId}`,
})
const log = (s: string): void => void process.stdout.write(`${s}\n`)

let stopping = false
const stop = async (code: number): Promise<never> => {
  if (!stopping) {
    stopping = true
    await app.stop()
  }
  process.exit(code)
}
process.once('SIGINT', () => {
  log('\ninterrupted: stopping cleanly (drain, flush, commit)...')
  void stop(130)
})

log(`hit counter demo on ${broker}: ${count} events, ${users} users`)
await app.start()
const controller = new AbortController()
const deadline = setTimeout(() => controller.abort(), seconds * 1000)
const produced = await produceHits({
  broker,
  topic: hitsTopic,
  count,
  users,
  rate: Number(values.rate),
  malformed: Number(values.malformed),
  signal: controller.signal,
  progressEvery: Math.max(1, Math.floor(count / 4)),
  onProgress: (sent, total) => log(`produced ${sent}/${total}`),
})
const expected = expectedCounts(produced.hits)
const want = [...expected.values()].reduce((a, b) => a + b, 0)

async function snapshot(): Promise<Map<string, number>> {
  const m = new Map<string, number>()
  for await (const [k, v] of counts.entries()) m.set(k, v)
  return m
}
const started = Date.now()
let got = new Map<string, number>()
for (;;) {
  got = await snapshot()
  const total = [...got.values()].reduce((a, b) => a + b, 0)
  const line = [...got.entries()]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([u, c]) => `${u}=${c}`)
    .join(' ')
  log(`counted ${total}/${want}  ${line}`)
  if (total >= want || controller.signal.aborted) break
  await new Promise((r) => setTimeout(r, 250))
}
clearTimeout(deadline)
const secs = (Date.now() - started + produced.ms) / 1000
const dlq = app.monitor.snapshot().dlq.total
const wrong = [...expected].filter(([u, c]) => got.get(u) !== c)
log(
  `\n${produced.sent} events (${produced.malformed} malformed -> ${countHits.dlqTopic}: ${dlq}) ` +
    `in ${secs.toFixed(2)} s; ${wrong.length === 0 ? 'every count matches' : `${wrong.length} user(s) differ`}`,
)
await stop(wrong.length === 0 && dlq === produced.malformed ? 0 : 1)
