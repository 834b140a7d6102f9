// The app of test/kafka/scaling.kafka.test.ts, run as `mephisto worker` child processes: events
// keyed by user on a 12-partition topic, counted per user in a table sharded like it; and a
// global table `refs`, written by an agent from a second topic (4 partitions), that every worker
// holds whole. SCALING_ID names the app (group, topics).
//
// Pages: `/counts` (every count of the table partitions this worker owns) and `/refs` (every
// entry of the global table, read from this worker's own copy), so the test reads a worker's
// state in one request rather than key by key.

import { App } from '@mephisto/core'

const id = process.env.SCALING_ID ?? 'scaling'

export const app = new App({
  id,
  broker: process.env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  web: { port: 0 },
  commitIntervalMs: 500,
  standbyIntervalMs: 500,
  // A SIGKILLed member is noticed after the session timeout: 6 s, the broker's minimum.
  kafka: { consumer: { sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 } },
})

export const events = app.topic<string, number>(`${id}-events`, { partitions: 12 })
export const counts = app.table<string, number>('counts', { default: () => 0, partitions: 12 })
export const refTopic = app.topic<string, string>(`${id}-refs`, { partitions: 4 })
export const refs = app.globalTable<string, string>('refs', { partitions: 4 })

export const count = app.agent(
  events,
  async (stream) => {
    for await (const [user] of stream.items()) counts.set(user, (await counts.get(user)) + 1)
  },
  { name: 'count' },
)

export const loadRefs = app.agent(
  refTopic,
  async (stream) => {
    for await (const [key, value] of stream.items()) refs.set(key, value)
  },
  { name: 'loadRefs' },
)

app.page('/counts', async () => {
  const owned = app.tableState(counts).ownedPartitions()
  const values: Record<string, number> = {}
  for (const partition of owned) {
    for await (const [user, n] of counts.entries({ partition })) values[user] = n
  }
  return { owned, counts: values }
})

app.page('/refs', async () => {
  const values: Record<string, string> = {}
  for await (const [key, value] of refs.entries()) values[key] = value
  return { worker: app.worker?.id, refs: values }
})
