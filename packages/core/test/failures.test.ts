import { TestApp } from '@mephisto/testkit'
import { describe, expect, it } from 'vitest'
import type { Store, TableStore, Transport, TransportProducer } from '../src/index.js'
import { App, MemoryBroker, MemoryTransport, MephistoError, memoryStore } from '../src/index.js'

function counter(options: { store?: Store } = {}) {
  const app = new App({ id: 'failures', logger: 'silent', ...options })
  const input = app.topic<string, number>('input', { partitions: 1 })
  const counts = app.table<string, number>('counts', { default: () => 0, partitions: 1 })
  app.agent(input, async (stream) => {
    for await (const [k] of stream.items()) counts.set(k, (await counts.get(k)) + 1)
  })
  return { app, input, counts }
}

/**
 * Counts on one worker with a store whose recovery fails with `failure` once set, then hands the
 * partition to a second worker (the first leaves), whose recovery meets it: what does it report?
 */
async function recoveryFailing(
  failure: Error,
): Promise<{ settled: Promise<void>; second: ReturnType<typeof counter> }> {
  const base = memoryStore()
  let broken = false
  const store: Store = {
    kind: 'flaky',
    async open(spec) {
      const s = await base.open(spec)
      return Object.assign(Object.create(s), {
        appliedOffset: async (p: number) => {
          if (broken) throw failure
          return s.appliedOffset(p)
        },
      }) as TableStore<any>
    },
  }
  const first = counter({ store })
  const t = await TestApp.start(first.app)
  await t.send(first.input, { key: 'a', value: 1 })
  await t.settle()
  // A second worker joins: the rebalance assigns it nothing on a 1-partition topic, but the
  // first one leaving hands partition 0 over, and recovery fails there.
  broken = true
  const second = counter({ store })
  const t2 = await TestApp.start(second.app, { broker: t.broker, clock: t.clock })
  await t.stop()
  return { settled: t2.settle(), second }
}

describe('infrastructure failures', () => {
  it('stops without committing when the producer cannot flush (outputs may be lost)', async () => {
    const { app, input } = counter()
    const broker = new MemoryBroker()
    let failFlush = false
    const base = new MemoryTransport(broker)
    const transport: Transport = Object.create(base, {
      producer: {
        value: (): TransportProducer => {
          const p = base.producer()
          return Object.assign(Object.create(p), {
            flush: async () => {
              if (failFlush) throw new Error('broker rejected the batch')
              return p.flush()
            },
          }) as TransportProducer
        },
      },
    })
    await app.start({ transport })
    await input.sendAndWait({ key: 'a', value: 1 })
    await new Promise((r) => setTimeout(r, 20))
    failFlush = true
    await expect(app.worker!.commit()).rejects.toThrow(/flush failed: broker rejected the batch/)
    expect(app.worker!.state).toBe('crashed')
    expect(broker.groupOffsets('failures', 'input').get(0)).toBe(-1)
  })

  it('crashes the worker, instead of running deaf, when the consumer is lost', async () => {
    const { settled, second } = await recoveryFailing(new Error('disk gone'))
    await expect(settled).rejects.toThrow(/^disk gone \(/)
    expect(second.app.worker!.state).toBe('crashed')
  })

  it('reports a store failure during recovery as that store error, with its own code and the reason first', async () => {
    const { settled, second } = await recoveryFailing(
      new MephistoError('STORE_LOCKED', 'the database at /data/p0 is locked by another worker'),
    )
    await expect(settled).rejects.toMatchObject({
      code: 'STORE_LOCKED',
      message: 'the database at /data/p0 is locked by another worker',
    })
    expect(second.app.experimental_testing.crashReason).toMatchObject({ code: 'STORE_LOCKED' })
  })
})
