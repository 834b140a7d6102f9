// The suite's hit counter with a counting agent that, for the hits of the table-poison users
// (workload.ts), writes a value its JSON table cannot encode: `{ n: 10n }`, as a user's bug might.
// The write must fail that event alone (at set(), under the agent's onError: dead-lettered from
// count_topic with ENCODE naming the table and the key), while every other event is counted and
// committed. Same topics, table and agent names as the hit counter, so the suite reads it back
// the same way; the per-minute table is left out.

import { variantHitCounter } from './variantApp.js'
import { isTablePoisonUser } from './workload.js'

const variant = variantHitCounter()
export const app = variant.app
const countTopic = variant.countTopic
// Typed to admit the bad value: the type checker would catch `{ n: 10n }` in a number table, but
// not one that arrives through an `any`.
const counts = app.table<string, number | { n: bigint }>('major-count', { default: () => 0, partitions: 1 })

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
