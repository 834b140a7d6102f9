// The suite's hit counter with a counting agent that, for the hits of the table-poison users
// (workload.ts), writes a value its JSON table cannot encode: `{ n: 10n }`, as a user's bug might.
// The write must fail that event alone (at set(), under the agent's onError: dead-lettered from
// count_topic with ENCODE naming the table and the key), while every other event is counted and
// committed. Same topics, table and agent names as the hit counter, so the suite reads it back
// the same way; the per-minute table is left out.
import { App } from '@mephisto/core'
import type { Hit } from '@mephisto/hit-counter-worker'
import { hitSchema } from '@mephisto/hit-counter-worker'
import { SESSION_TIMEOUT_MS } from './app.js'
import { isTablePoisonUser } from './workload.js'

const env = process.env
export const app = new App({
  id: env.HIT_COUNTER_ID ?? 'hit-counter',
  broker: env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  processingGuarantee:
    env.MEPHISTO_PROCESSING_GUARANTEE === 'exactly_once' ? 'exactly_once' : 'at_least_once',
  kafka: { consumer: { sessionTimeout: SESSION_TIMEOUT_MS, heartbeatInterval: 1_000 } },
})

const hits = app.topic<string, Hit>(env.HIT_COUNTER_TOPIC ?? 'hit_count', { value: hitSchema })
const countTopic = app.topic<string, Hit>(env.HIT_COUNTER_COUNT_TOPIC ?? 'count_topic', {
  internal: true,
  partitions: 1,
})
// Typed to admit the bad value: the type checker would catch `{ n: 10n }` in a number table, but
// not one that arrives through an `any`.
const counts = app.table<string, number | { n: bigint }>('major-count', { default: () => 0, partitions: 1 })

app.agent(
  hits,
  async (stream) => {
    for await (const hit of stream) {
      if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
    }
  },
  { name: 'countHits' },
)

app.agent(
  countTopic,
  async (stream) => {
    for await (const hit of stream) {
      if (isTablePoisonUser(hit.userId)) counts.set(hit.userId, { n: 10n })
      else counts.set(hit.userId, ((await counts.get(hit.userId)) as number) + 1)
    }
  },
  { name: 'incrementCount' },
)
