// The producer as a command: random hit events to hit_count.
//   pnpm --filter @mephisto/hit-counter-producer start -- --count 100000 --users 50
import { parseArgs } from 'node:util'
import { produceHits } from './producer.js'

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: process.env.KAFKA_BROKERS ?? 'memory://' },
    count: { type: 'string', default: '10000' },
    users: { type: 'string', default: '20' },
    rate: { type: 'string', default: '0' },
    malformed: { type: 'string', default: '0' },
    seed: { type: 'string', default: '42' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  process.stdout.write(`hit-counter-producer: sends {userId, hits, timestamp} JSON events to hit_count
  --broker <list>    Kafka bootstrap list or memory:// (default: $KAFKA_BROKERS or memory://)
  --count <n>        events to send (default 10000)
  --users <n>        distinct users (default 20)
  --rate <n>         events per second, 0 = as fast as possible (default 0)
  --malformed <0-1>  share of malformed messages, to show the dead-letter path (default 0)
  --seed <n>         random seed (default 42)
`)
  process.exit(0)
}
const num = (name: string, v: string | undefined): number => {
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${name} must be a non-negative number (got ${v})\n`)
    process.exit(2)
  }
  return n
}
const controller = new AbortController()
process.once('SIGINT', () => controller.abort())
process.once('SIGTERM', () => controller.abort())
const total = num('count', values.count)
const result = await produceHits({
  broker: values.broker!,
  count: total,
  users: num('users', values.users),
  rate: num('rate', values.rate),
  malformed: num('malformed', values.malformed),
  seed: num('seed', values.seed),
  signal: controller.signal,
  progressEvery: Math.max(1, Math.floor(total / 20)),
  onProgress: (sent, all) => process.stdout.write(`sent ${sent}/${all}\n`),
})
process.stdout.write(
  `done: ${result.sent} events (${result.malformed} malformed) in ${result.ms} ms ` +
    `(${Math.round((result.sent * 1000) / Math.max(1, result.ms))}/s)\n`,
)
