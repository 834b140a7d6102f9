// A windowed stream-stream join for test/kafka/joins.kafka.test.ts, run as a `mephisto worker`
// child process so that the test can kill -9 it: orders left-joined with payments within 1 s of
// event time, under exactly-once. JOIN_ID names the app (group, topics, transactional ids).

import { App } from '@mephisto/core'

const id = process.env.JOIN_ID ?? 'join-fixture'

export interface Ev {
  id: string
}

export const app = new App({
  id,
  broker: process.env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  processingGuarantee: 'exactly_once',
  commitIntervalMs: 300,
  web: { port: 0 },
  // A killed member is noticed after the session timeout: 6 s, the broker's minimum.
  kafka: { consumer: { sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 } },
})

export const orders = app.topic<string, Ev>(`${id}-orders`, { partitions: 4 })
export const payments = app.topic<string, Ev>(`${id}-payments`, { partitions: 4 })
export const paid = app.join(orders, payments, { name: 'paid', withinMs: 1000, type: 'left' })
