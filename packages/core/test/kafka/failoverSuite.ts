/**
 * The hit counter on Kafka at scale and across a worker leaving its group, as a suite a transport
 * package runs too (its own client named in `transport`): 100,000 events counted exactly by one
 * worker, and two workers of one group where the one leaving hands its partitions and table state
 * to the other. failover.kafka.test.ts runs it on kafkajs, beside the broker restarts.
 */
import { expect, it } from 'vitest'
import type { Hit } from '../helpers.js'
import { events, expected, hitCounter, produceHits, tableOf, waitForTable } from './hitCounterFixture.js'
import { describeKafka, topicsDeletedAfterAll, uniqueName } from './kafka.js'

/** The suite on the Kafka client `transport` (a registered name; kafkajs when undefined). */
export function failoverSuite(transport?: string): void {
  const on = transport === undefined ? {} : { transport }
  const created = topicsDeletedAfterAll()
  const produce = (id: string, topic: string, hits: Hit[]): Promise<void> => produceHits(id, topic, hits, on)

  describeKafka(
    `the hit counter on Kafka at scale and across a leaving worker (${transport ?? 'kafkajs'})`,
    () => {
      it('counts 100,000 events exactly', async () => {
        const id = uniqueName('hits100k')
        created.push(id)
        const topic = `${id}-hit_count`
        const w = hitCounter(id, topic, on)
        await w.app.start()
        const hits = events(100_000, 11)
        await produce(id, topic, hits)
        const want = expected(hits)
        expect(await waitForTable(w.counts, want, 120_000)).toEqual(want)
        await w.app.stop()
      }, 180_000)

      it('two workers in one group: stopping one hands its partitions and table state to the other, counts exact', async () => {
        const id = uniqueName('two-workers')
        created.push(id)
        const topic = `${id}-hit_count`
        const a = hitCounter(id, topic, on)
        const b = hitCounter(id, topic, on)
        await a.app.start()
        await b.app.start()
        const first = events(5_000, 21)
        await produce(id, topic, first)
        // Both work: the hit topic's 4 partitions are split between them.
        await new Promise((r) => setTimeout(r, 1500))
        expect([a, b].map((w) => w.app.monitor.snapshot().events.total > 0)).toEqual([true, true])
        // Stop the worker owning the table's only partition: its state must move to the other.
        const [leaving, staying] = a.app.tableState(a.counts).owns(0) ? [a, b] : [b, a]
        await leaving.app.stop()
        const second = events(5_000, 22)
        await produce(id, topic, second)
        const want = expected([...first, ...second])
        expect(await waitForTable(staying.counts, want, 60_000)).toEqual(want)
        await new Promise((r) => setTimeout(r, 1000))
        expect(await tableOf(staying.counts)).toEqual(want)
        await staying.app.stop()
      }, 120_000)
    },
  )
}
