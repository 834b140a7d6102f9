// The hit counter as the suite runs it: the app of apps/hit-counter-worker, with a consumer
// session timeout of 10 s instead of kafkajs' 30 s. After a kill -9 the group waits that long
// for the dead member before it hands its partitions on: the dominant part of the time to
// recover, and the setting to tune in production (lower is faster failover, higher tolerates
// longer pauses).
import { createHitCounter } from '@mephisto/hit-counter-worker'

export const SESSION_TIMEOUT_MS = 10_000

export function chaosHitCounter() {
  const counter = createHitCounter({
    app: { kafka: { consumer: { sessionTimeout: SESSION_TIMEOUT_MS, heartbeatInterval: 1_000 } } },
  })
  return counter
}

export const app = chaosHitCounter().app
