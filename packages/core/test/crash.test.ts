import { TestApp } from '@mephisto/testkit'
import { describe, expect, it } from 'vitest'
import type { Hit } from './helpers.js'
import { hitCounter, seededRandom } from './helpers.js'

const EVENTS = 10_000
const USERS = 7

/**
 * At-least-once under a crash at a random moment: the hit counter processes 10 000 events, the
 * worker is killed after a random number of them, restarts and finishes. No count may be lost;
 * a count may only be over by duplicates, and there can be no more of those than events of
 * `hit_count` that were processed but not committed when the worker died.
 */
describe('crash at a random point', () => {
  for (const seed of [1, 7, 42, 1234, 99_999]) {
    it(`keeps every count (seed ${seed})`, async () => {
      const random = seededRandom(seed)
      const h = hitCounter({ commitEvery: 50 + Math.floor(random() * 500) })
      const crashAfter = 1 + Math.floor(random() * (EVENTS - 1))

      // Which offsets of each hit_count partition reached the agent before the crash.
      const reached = new Map<number, number>()
      let handed = 0
      let crashed = false
      let crashing: Promise<void> | undefined
      let t!: TestApp
      h.app.sensors.add({
        onStreamEventIn(e) {
          if (crashed || e.topic !== 'hit_count') return
          reached.set(e.partition, Math.max(reached.get(e.partition) ?? -1, e.offset))
          if (++handed === crashAfter) {
            crashed = true
            crashing = t.crash()
          }
        },
      })
      t = await TestApp.start(h.app)

      const expected = new Map<string, number>()
      for (let i = 0; i < EVENTS; i++) {
        const userId = `user-${Math.floor(random() * USERS)}`
        const hit: Hit = { userId, hits: Math.floor(random() * 40), timestamp: i }
        if (hit.hits > 20) expected.set(userId, (expected.get(userId) ?? 0) + 1)
        // Raw bytes: the broker takes them whether or not the worker is alive.
        await t.sendRaw('hit_count', { key: userId, value: JSON.stringify(hit) })
      }
      await t.settle()
      expect(crashed).toBe(true)
      await crashing

      const committed = t.committed(h.hits)
      let redelivered = 0
      for (const [partition, last] of reached) {
        redelivered += Math.max(0, last + 1 - Math.max(0, committed.get(partition) ?? 0))
      }

      await t.restart()
      await t.settle()
      for (const [userId, n] of expected) {
        const count = await h.counts.get(userId)
        expect(count, `${userId} (seed ${seed}, crash after ${crashAfter})`).toBeGreaterThanOrEqual(n)
        expect(count, `${userId} (seed ${seed}, crash after ${crashAfter})`).toBeLessThanOrEqual(
          n + redelivered,
        )
      }
      // Everything was processed to the end in the end.
      await t.stop()
      const end = t.broker.endOffsets('hit_count')
      expect(t.committed(h.hits)).toEqual(end)
    })
  }
})
