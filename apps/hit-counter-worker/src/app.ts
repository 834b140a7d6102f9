import type { StandardSchemaV1 } from '@standard-schema/spec'
import { App } from '@mephisto/core'

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
      if (typeof v.userId !== 'string' || v.userId === '') issues.push({ message: 'expected a string', path: ['userId'] })
      if (typeof v.hits !== 'number' || !Number.isFinite(v.hits)) issues.push({ message: 'expected a number', path: ['hits'] })
      if (typeof v.timestamp !== 'number') issues.push({ message: 'expected a number', path: ['timestamp'] })
      return issues.length ? { issues } : { value: v as Hit }
    },
  },
}

export function createHitCounter(options: { broker?: string | string[]; id?: string } = {}) {
  const app = new App({
    id: options.id ?? 'hit-counter',
    broker: options.broker ?? process.env.KAFKA_BROKERS ?? 'memory://',
    store: 'memory://',
    logger: (process.env.LOG_LEVEL as 'info' | undefined) ?? 'info',
  })

  const hits = app.topic<string, Hit>('hit_count', { value: hitSchema })
  const countTopic = app.topic<string, Hit>('count_topic', { internal: true, partitions: 1 })
  const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })

  /** Hits over 20 go on to count_topic. Malformed input lands in hit-counter-hit_count-dlq. */
  const countHits = app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
      }
    },
    { name: 'countHits' },
  )

  /** Counts them per user. */
  const incrementCount = app.agent(
    countTopic,
    async (stream) => {
      for await (const hit of stream) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
      }
    },
    { name: 'incrementCount' },
  )

  return { app, hits, countTopic, counts, countHits, incrementCount }
}

const hitCounter = createHitCounter()
export const { app, hits, countTopic, counts, countHits, incrementCount } = hitCounter
