import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { failoverSuite } from './failoverSuite.js'
import { events, expected, hitCounter, produceHits as produce, waitForTable } from './hitCounterFixture.js'
import { describeKafka, kafkaLocalDir, topicsDeletedAfterAll, uniqueName } from './kafka.js'

const script = fileURLToPath(new URL('../../../../docker/kafka-local/kafka-local.sh', import.meta.url))

/** Stops or starts the local test broker's node, data kept. */
function brokerNode(action: 'stop' | 'start'): void {
  execFileSync('bash', [script, `${action}-node`, '1', '--dir', kafkaLocalDir()], {
    stdio: 'ignore',
    timeout: action === 'stop' ? 60_000 : 120_000,
  })
}
const created = topicsDeletedAfterAll()

failoverSuite()

describeKafka('the hit counter on Kafka across broker restarts and outages', () => {
  it.skipIf(!kafkaLocalDir())(
    'a broker stopped and restarted mid-run loses nothing',
    async () => {
      const id = uniqueName('broker-restart')
      created.push(id)
      const topic = `${id}-hit_count`
      const w = hitCounter(id, topic)
      await w.app.start()
      const first = events(3_000, 31)
      await produce(id, topic, first)
      expect(await waitForTable(w.counts, expected(first), 60_000)).toEqual(expected(first))
      brokerNode('stop')
      await new Promise((r) => setTimeout(r, 3000))
      brokerNode('start')
      const second = events(3_000, 32)
      await produce(id, topic, second)
      const want = expected([...first, ...second])
      const got = await waitForTable(w.counts, want, 90_000)
      // At-least-once: a retry after the outage may count an event twice, never lose one.
      for (const [user, n] of want) expect(got.get(user) ?? 0).toBeGreaterThanOrEqual(n)
      const extra = [...got].reduce((s, [u, n]) => s + n - (want.get(u) ?? 0), 0)
      process.stderr.write(`[broker restart] duplicates counted: ${extra}\n`)
      await w.app.stop()
    },
    240_000,
  )

  it.skipIf(!kafkaLocalDir())(
    'a broker out of reach for longer than the client retries: the worker rolls back and restarts itself',
    async () => {
      const id = uniqueName('broker-outage')
      created.push(id)
      const topic = `${id}-hit_count`
      // A small retry budget, so that an outage of a few seconds outlasts it.
      const w = hitCounter(id, topic, {
        kafka: {
          client: { retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } },
          consumer: { heartbeatInterval: 300, maxWaitTimeInMs: 200, sessionTimeout: 6_000 },
        },
      })
      await w.app.start()
      const first = events(2_000, 41)
      await produce(id, topic, first)
      expect(await waitForTable(w.counts, expected(first), 60_000)).toEqual(expected(first))
      const before = w.app.worker
      brokerNode('stop')
      // A table write while the broker is away: the next commit must flush its changelog record,
      // which fails once the retries are spent.
      await w.counts.set('probe', 1, { partition: 0 })
      // Polled rather than slept: a slow machine takes longer to spend the retries.
      for (let waited = 0; w.app.worker === before && waited < 20_000; waited += 100) {
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(w.app.worker).not.toBe(before)
      // The broker stays away a little longer, so the first restarts fail to start too.
      await new Promise((r) => setTimeout(r, 2_000))
      brokerNode('start')
      const second = events(2_000, 42)
      await produce(id, topic, second)
      const want = expected([...first, ...second])
      const got = await waitForTable(w.counts, want, 90_000)
      for (const [user, n] of want) expect(got.get(user) ?? 0).toBeGreaterThanOrEqual(n)
      expect(w.app.running).toBe(true)
      expect(w.app.monitor.snapshot().restarts.total).toBeGreaterThanOrEqual(1)
      // The uncommitted write was rolled back with the worker, as in a crash.
      expect(await w.counts.get('probe')).toBe(0)
      await w.app.stop()
    },
    240_000,
  )
})
