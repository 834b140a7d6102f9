// The app of the window replay test (windowReplay.kafka.test.ts), run as a `mephisto worker`
// child process: readings keyed by sensor on a 4-partition topic, counted per sensor per hour of
// their record timestamps (tumbling 1 h, closed by stream time) under exactly-once. Each closed
// window goes to the topic `<id>-closed` as { sensor, start, count, worker }.
//
// Environment: WINDOW_REPLAY_ID names the app (group, topics), WINDOW_REPLAY_WORKER names this
// process in what it reports. The page `/replay` reports the events processed, the table's late
// events and the stream time of each table partition this worker owns.

import { App } from '@mephisto/core'

const id = process.env.WINDOW_REPLAY_ID ?? 'window-replay'
const worker = process.env.WINDOW_REPLAY_WORKER ?? String(process.pid)
const HOUR = 3_600_000
/**
 * The agent pauses this long every PACE_EVERY readings. Unpaced, a worker reads 40,000 readings
 * faster than its first transaction commits, so the test could not kill it with part of the
 * replay committed and part not; paced, the replay spans about 20 commits.
 */
const PACE_MS = 5
const PACE_EVERY = 100

/** What the app reports of each closed window. */
export interface ClosedWindow {
  sensor: string
  start: number
  count: number
  worker: string
}

export const app = new App({
  id,
  broker: process.env.KAFKA_BROKERS ?? 'memory://',
  store: 'memory://',
  web: { port: 0 },
  processingGuarantee: 'exactly_once',
  commitIntervalMs: 100,
  // A SIGKILLed member is noticed after the session timeout: 6 s, the broker's minimum.
  kafka: { consumer: { sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 } },
})

export const readings = app.topic<string, { seq: number }>(`${id}-readings`, { partitions: 4 })
export const closed = app.topic<string, ClosedWindow>(`${id}-closed`, { partitions: 1 })

export const counts = app.table<string, number>('per-hour', {
  default: () => 0,
  partitions: 4,
  onWindowClose: async (sensor, window, count) => {
    await closed.send({ key: sensor, value: { sensor, start: window.start, count, worker } })
  },
})
export const perHour = counts.tumbling(HOUR)

let processed = 0

export const count = app.agent(
  readings,
  async (stream) => {
    for await (const [sensor] of stream.items()) {
      await perHour.update(sensor, (n) => n + 1)
      if (++processed % PACE_EVERY === 0) await new Promise((r) => setTimeout(r, PACE_MS))
    }
  },
  { name: 'count' },
)

app.page('/replay', async () => {
  const owned = app.tableState(counts).ownedPartitions()
  return {
    processed,
    lateEvents: app.monitor.snapshot().tables['per-hour']?.lateEvents ?? 0,
    streamTime: Object.fromEntries(owned.map((p) => [p, perHour.streamTime(p)])),
  }
})
