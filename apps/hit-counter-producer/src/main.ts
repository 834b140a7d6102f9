// The producer as a command: random hit events to hit_count.
//   pnpm producer -- --count 100000 --users 50 --rate 5000 --malformed 0.01
//   pnpm --filter @mephisto/hit-counter-producer start -- --count 100000 --users 50
import { parseArgs } from 'node:util'
import { produceHits } from './producer.js'
import { progressReporter } from './progress.js'

// MEPHISTO_TRANSPORT=<name> chooses the Kafka client of @mephisto/transport-<name>, which registers
// itself when imported (the mephisto CLI does this for workers; this command is not run by it).
const client = process.env.MEPHISTO_TRANSPORT?.trim()
if (client && client !== 'kafkajs') await import(`@mephisto/transport-${client}`)

// kafkajs 2.2.4 arms setTimeout with a negative delay (tulios/kafkajs#1751); Node 23+ warns about
// it, though Node clamps it to 1 ms as older Node did silently. Keep the output for real warnings.
const printWarning = process.listeners('warning')
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') for (const print of printWarning) print(w)
})

const usage = `hit-counter-producer: sends {userId, hits, timestamp} JSON events to hit_count
  --broker <list>    Kafka bootstrap list or memory:// (default: $KAFKA_BROKERS or memory://)
  --topic <name>     topic to send to (default: $HIT_COUNTER_TOPIC or hit_count)
  --count <n>        events to send (default 10000)
  --users <n>        distinct users (default 20)
  --rate <n>         events per second, 0 = as fast as possible (default 0)
  --malformed <0-1>  share of malformed messages, to show the dead-letter path (default 0)
  --seed <n>         random seed (default 42)
  --progress <mode>  bar (a progress bar with rate and ETA), lines, or auto: bar on a terminal,
                     lines otherwise (default auto)
Exit codes: 0 done, 1 the broker failed, 2 bad arguments.
`

let values: Record<string, string | boolean | undefined>
try {
  ;({ values } = parseArgs({
    // pnpm passes a lone '--' through when run as `pnpm producer -- --count 10`.
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      broker: { type: 'string', default: process.env.KAFKA_BROKERS ?? 'memory://' },
      topic: { type: 'string', default: process.env.HIT_COUNTER_TOPIC ?? 'hit_count' },
      count: { type: 'string', default: '10000' },
      users: { type: 'string', default: '20' },
      rate: { type: 'string', default: '0' },
      malformed: { type: 'string', default: '0' },
      seed: { type: 'string', default: '42' },
      progress: { type: 'string', default: 'auto' },
      help: { type: 'boolean', short: 'h' },
    },
  }))
} catch (err) {
  process.stderr.write(`hit-counter-producer: ${(err as Error).message}\n${usage}`)
  process.exit(2)
}
if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}
const num = (name: string, min = 0, max = Number.POSITIVE_INFINITY): number => {
  const v = values[name]
  const n = Number(v)
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(
      `hit-counter-producer: --${name} must be a number from ${min}${Number.isFinite(max) ? ` to ${max}` : ''} (got ${v})\n`,
    )
    process.exit(2)
  }
  return n
}
const total = num('count')
const users = num('users', 1)
const rate = num('rate')
const malformed = num('malformed', 0, 1)
const seed = num('seed')
const mode = values.progress
if (mode !== 'auto' && mode !== 'bar' && mode !== 'lines') {
  process.stderr.write(`hit-counter-producer: --progress must be auto, bar or lines (got ${mode})\n`)
  process.exit(2)
}

const controller = new AbortController()
process.once('SIGINT', () => controller.abort())
process.once('SIGTERM', () => controller.abort())
const progress = progressReporter({
  total,
  bar: mode === 'bar' || (mode === 'auto' && process.stdout.isTTY === true),
  out: process.stdout,
})
try {
  const result = await produceHits({
    broker: values.broker as string,
    topic: values.topic as string,
    count: total,
    users,
    rate,
    malformed,
    seed,
    signal: controller.signal,
    progressEvery: progress.every,
    onProgress: (sent) => progress.update(sent),
  })
  progress.stop()
  process.stdout.write(
    `done: ${result.sent} events (${result.malformed} malformed) to ${values.topic} in ${result.ms} ms ` +
      `(${Math.round((result.sent * 1000) / Math.max(1, result.ms))}/s)${controller.signal.aborted ? ', interrupted' : ''}\n`,
  )
} catch (err) {
  progress.stop()
  process.stderr.write(`hit-counter-producer: ${(err as Error)?.message ?? err}\n`)
  process.exit(1)
}
