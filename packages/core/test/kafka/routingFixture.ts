// The app of test/kafka/routing.kafka.test.ts, run as `mephisto worker` child processes: events
// keyed by user on a 6-partition topic, counted per user in a table sharded like the topic; the
// agent yields each new count with the id of the worker that counted it, so an ask() shows where
// it was answered. ROUTING_ID names the app (group, topics).
//
// `/ask/:user?n=N` asks the agent from this worker (any worker: the event goes to the owner of
// the user's partition, and its answer comes back through the replies topic).

import { App } from '@mephisto/core'

const id = process.env.ROUTING_ID ?? 'routing'

export const app = new App({
  id,
  broker: process.env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  web: { port: 0 },
  commitIntervalMs: 500,
  kafka: { consumer: { sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 } },
})

export const events = app.topic<string, number>(`${id}-events`, { partitions: 6 })
export const counts = app.table<string, number>('counts', { default: () => 0, partitions: 6 })

export const count = app.agent(
  events,
  async function* (stream) {
    for await (const [user, n] of stream.items()) {
      const total = (await counts.get(user)) + n
      counts.set(user, total)
      yield { total, worker: app.worker?.id }
    }
  },
  { name: 'count' },
)

app.page('/ask/:user', async (req) => {
  const n = Number(req.query.get('n') ?? '1')
  const answer = await count.ask(n, { key: req.params.user!, timeoutMs: 15_000 })
  return { asker: app.worker?.id, answer }
})
