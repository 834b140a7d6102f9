// The app of test/kafka/leader.kafka.test.ts, run as `mephisto worker` child processes: an app
// with no agents, so no input partition says who leads, yet one worker must. Its onLeader timer
// writes a tick naming the worker every 200 ms, and its onLeader task writes one record naming the
// worker each time a worker becomes leader. LEADER_ID names the app (group, topics).

import { App } from '@mephisto/core'

const id = process.env.LEADER_ID ?? 'leader'

export const app = new App({
  id,
  broker: process.env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  web: { port: 0 },
  // A SIGKILLed member is noticed after the session timeout: 6 s, the broker's minimum.
  kafka: { consumer: { sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 } },
})

export const ticks = app.topic<string, string>(`${id}-ticks`, { partitions: 1 })

app.timer(200, () => ticks.send({ key: 'tick', value: app.worker?.id ?? '?' }), { onLeader: true })
app.task(() => ticks.send({ key: 'task', value: app.worker?.id ?? '?' }), { onLeader: true })
