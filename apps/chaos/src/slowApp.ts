// The suite's hit counter with a third agent that takes 12 s over one event in 2500: slower
// than the 10 s session timeout. The consumer must keep its session alive (it heartbeats while a
// batch is in the agents' hands) rather than be expelled, and nothing may be lost or, under
// exactly-once, counted twice.
import { chaosHitCounter } from './app.js'

const counter = chaosHitCounter()

counter.app.agent(
  counter.hits,
  async (stream) => {
    for await (const hit of stream) {
      const seq = (hit as { seq?: number }).seq ?? 0
      if (seq % 2_500 === 1_000) await new Promise((r) => setTimeout(r, 12_000))
    }
  },
  { name: 'slowpoke' },
)

export const app = counter.app
