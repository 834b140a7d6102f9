// The start of the suite's variant hit counters (tableValueApp.ts, hungAgentApp.ts): the app, its
// two topics and the forwarding agent, as the hit counter has them (same ids and names, so the
// suite reads a variant back the same way); each variant adds its own table and counting agent.
import { App } from '@mephisto/core'
import type { Hit } from '@mephisto/hit-counter-worker'
import { hitSchema } from '@mephisto/hit-counter-worker'
import { SESSION_TIMEOUT_MS } from './app.js'

export function variantHitCounter() {
  const env = process.env
  const app = new App({
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
  app.agent(
    hits,
    async (stream) => {
      for await (const hit of stream) {
        if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
      }
    },
    { name: 'countHits' },
  )
  return { app, countTopic }
}
