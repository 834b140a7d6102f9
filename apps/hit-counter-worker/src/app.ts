import type { AppOptions, ProcessingGuarantee, Store } from '@mephisto/core'
import { App } from '@mephisto/core'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { monitorFromEnv, storeFromEnv, transportFromEnv } from './plugins.js'

export interface Hit {
  userId: string
  hits: number
  timestamp: number
}

/**
 * A Standard Schema for Hit, written by hand to show the interface; zod, valibot or arktype
 * schemas plug in the same way. Values failing it go to the dead-letter topic.
 */
export const hitSchema: StandardSchemaV1<unknown, Hit> = {
  '~standard': {
    version: 1,
    vendor: 'hit-counter',
    validate(value) {
      const v = value as Partial<Hit> | null
      const issues: StandardSchemaV1.Issue[] = []
      if (typeof v !== 'object' || v === null) return { issues: [{ message: 'expected an object' }] }
      if (typeof v.userId !== 'string' || v.userId === '')
        issues.push({ message: 'expected a string', path: ['userId'] })
      if (typeof v.hits !== 'number' || !Number.isFinite(v.hits))
        issues.push({ message: 'expected a number', path: ['hits'] })
      if (typeof v.timestamp !== 'number') issues.push({ message: 'expected a number', path: ['timestamp'] })
      return issues.length ? { issues } : { value: v as Hit }
    },
  },
}

export interface HitCounterOptions {
  /** Default: $KAFKA_BROKERS, else the memory broker. */
  broker?: string | string[]
  /** App id (consumer group, prefix of internal topics). Default: $HIT_COUNTER_ID or `hit-counter`. */
  id?: string
  /** Table store. Default `memory://`; the module's app takes it from MEPHISTO_STORE (see plugins.ts). */
  store?: Store | string
  /** The input topic. Default: $HIT_COUNTER_TOPIC or `hit_count`. */
  hitsTopic?: string
  /** The internal topic between the two agents. Default: $HIT_COUNTER_COUNT_TOPIC or `count_topic`. */
  countTopic?: string
  /** Default: $MEPHISTO_PROCESSING_GUARANTEE, else `at_least_once`. */
  processingGuarantee?: ProcessingGuarantee
  /** Any other App options (web, logger, kafka, ...), passed through. */
  app?: Omit<AppOptions, 'id' | 'broker' | 'store' | 'processingGuarantee'>
}

/** Per-user counts per minute, kept for an hour after each minute ends. */
export const MINUTE = 60_000

/**
 * The hit counter: hits over 20 go on to `count_topic`; a table counts them per user, in total
 * and per minute of event time. Malformed input goes to the dead-letter topic
 * `<id>-hit_count-dlq`.
 */
export function createHitCounter(options: HitCounterOptions = {}) {
  const env = process.env
  const app = new App({
    id: options.id ?? env.HIT_COUNTER_ID ?? 'hit-counter',
    broker: options.broker ?? env.KAFKA_BROKERS ?? 'memory://',
    store: options.store ?? 'memory://',
    logger: (env.LOG_LEVEL as 'info' | undefined) ?? 'info',
    processingGuarantee:
      options.processingGuarantee ??
      (env.MEPHISTO_PROCESSING_GUARANTEE as ProcessingGuarantee | undefined) ??
      'at_least_once',
    ...options.app,
  })

  const hits = app.topic<string, Hit>(options.hitsTopic ?? env.HIT_COUNTER_TOPIC ?? 'hit_count', {
    value: hitSchema,
  })
  const countTopic = app.topic<string, Hit>(
    options.countTopic ?? env.HIT_COUNTER_COUNT_TOPIC ?? 'count_topic',
    {
      internal: true,
      partitions: 1,
    },
  )
  const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })
  // Windows by the hit's own timestamp, not by when it reached count_topic: a backlog replayed
  // later still lands in the minute it happened.
  const perMinute = app
    .table<string, number>('major-count-per-minute', { default: () => 0, partitions: 1 })
    .tumbling(MINUTE, { expiresMs: 60 * MINUTE })
    .relativeToField((hit: Hit) => hit.timestamp)

  /** Hits over 20 go on to count_topic. Malformed input lands in the dead-letter topic. */
  const countHits = app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
      }
    },
    { name: 'countHits' },
  )

  /** Counts them per user, in total and per minute. */
  const incrementCount = app.agent(
    countTopic,
    async (stream) => {
      for await (const hit of stream) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
        await perMinute.update(hit.userId, (n) => n + 1)
      }
    },
    { name: 'incrementCount' },
  )

  /** `GET /counts/:user`: the user's total and the current minute's count. */
  app.page('/counts/:user', async (req) => {
    const user = req.params.user ?? ''
    return { user, total: await counts.get(user), thisMinute: await perMinute.now(user) }
  })

  return { app, hits, countTopic, counts, perMinute, countHits, incrementCount }
}

// The module's app, as `mephisto -A src/app.ts worker` runs it: store and monitor from the
// environment (plugins.ts), both loaded only when asked for.
await transportFromEnv()
const hitCounter = createHitCounter({ store: await storeFromEnv() })
const monitor = await monitorFromEnv()
if (monitor) hitCounter.app.sensors.add(monitor)

export const { app, hits, countTopic, counts, perMinute, countHits, incrementCount } = hitCounter
