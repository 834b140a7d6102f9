// The app of restart.ts, run as a `mephisto worker` child process: every event of its input topic
// is answered on its output topic (record timestamp: when the worker handled it), so the bench
// sees from outside when a worker processes again after a kill -9 and a restart. RESTART_ID names
// the app (group, topics).
import { App } from '@mephisto/core'

const id = process.env.RESTART_ID ?? 'bench-restart'

export const app = new App({
  id,
  broker: process.env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  web: false,
  commitIntervalMs: 500,
})

export const input = app.topic<string, number>(`${id}-in`, { partitions: 4 })
export const output = app.topic<string, number>(`${id}-out`, { partitions: 1 })

app.agent(
  input,
  async (stream) => {
    for await (const [key, n] of stream.items()) await output.send({ key, value: n })
  },
  { name: 'echo' },
)
