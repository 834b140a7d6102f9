// The suite's hit counter with a counting agent that hangs on the hits of the hung users
// (workload.ts), as an agent awaiting a call that never returns would. The agent bounds an event
// with `eventTimeoutMs`, so each hung event must fail alone (EVENT_TIMEOUT, dead-lettered from
// count_topic, a new actor going on) while every other event is counted and committed, with no
// restart and no exit. Users of an even index hang for ever; those of an odd one wake after
// HUNG_WAKE_MS, long after their event was settled, and try a table write, which must be refused
// (logged for the suite to count) and must never reach the table. Same topics, table and agent
// names as the hit counter, so the suite reads it back the same way; the per-minute table is left
// out.

import { LATE_WRITE_NOT_REFUSED, LATE_WRITE_REFUSED } from './processes.js'
import { variantHitCounter } from './variantApp.js'
import { HUNG_EVENT_TIMEOUT_MS, HUNG_WAKE_MS, hungUserIndex } from './workload.js'

const variant = variantHitCounter()
export const app = variant.app
const countTopic = variant.countTopic
const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })

app.agent(
  countTopic,
  async (stream) => {
    for await (const hit of stream) {
      const hung = hungUserIndex(hit.userId)
      if (hung === undefined) {
        counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
        continue
      }
      if (hung % 2 === 0) await new Promise<never>(() => {})
      await new Promise((r) => setTimeout(r, HUNG_WAKE_MS))
      // Long after the event timed out and was dead-lettered: this write must not land.
      let code: unknown = 'no error: the write was accepted'
      try {
        counts.set(hit.userId, 1)
      } catch (err) {
        code = (err as { code?: unknown }).code
      }
      if (code === 'EVENT_TIMEOUT') app.logger.warn(`${LATE_WRITE_REFUSED} (${hit.userId})`)
      else app.logger.error(`${LATE_WRITE_NOT_REFUSED} (${hit.userId}): ${String(code)}`)
    }
  },
  // No retries: each hung event is dead-lettered after one timeout, not after three.
  { name: 'incrementCount', eventTimeoutMs: HUNG_EVENT_TIMEOUT_MS, retries: 0 },
)
