import type { ConsumerHandlers, RecordBatch } from '@mephisto/core'
import { BrokerError } from '@mephisto/core'
import { createRecordsBatch } from '@platformatic/kafka'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { KafkaClient } from './client.js'
import type { DeliveryHost } from './delivery.js'
import { Delivery } from './delivery.js'
import type { PartitionAnswer } from './fetch.js'
import type { RebalanceGuard } from './rebalanceGuard.js'

// The fetch itself is the broker's; these tests give Delivery the answers a broker could.
const answers: Buffer[] = []
let fetches = 0
vi.mock('./fetch.js', () => ({
  byLeader: (_metadata: unknown, partitions: unknown[]) =>
    new Map([[1, { broker: { host: 'h', port: 1 }, partitions }]]),
  fetchFrom: async (): Promise<PartitionAnswer[]> => {
    fetches++
    const recordSet = answers.shift()
    if (recordSet === undefined) await new Promise((r) => setTimeout(r, 20))
    return [
      {
        topic: 't',
        partition: 0,
        error: undefined,
        highWatermark: 10,
        lastStableOffset: 10,
        logStartOffset: 0,
        abortedTransactions: null,
        recordSet: recordSet ?? Buffer.alloc(0),
      },
    ]
  },
}))

/** A record batch of `values` from offset 0, as the broker sends it. */
function batch(values: string[]): Buffer {
  const messages = values.map((v) => ({
    topic: 't',
    partition: 0,
    key: Buffer.from('k'),
    value: Buffer.from(v),
  }))
  return Buffer.from(createRecordsBatch(messages as Parameters<typeof createRecordsBatch>[0]).buffer)
}

function delivery(onBatch: (batch: RecordBatch) => Promise<void>) {
  const fail = vi.fn<DeliveryHost['fail']>()
  const host: DeliveryHost = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    handlers: () => ({ onBatch }) as unknown as ConsumerHandlers,
    fail,
    committed: async (tps) => tps.map((tp) => ({ ...tp, offset: 0 })),
    reset: async (tps) => tps.map((tp) => ({ ...tp, offset: 0 })),
  }
  const guard = { deliverable: () => true, mayCommit: () => true } as unknown as RebalanceGuard
  const client = { metadata: async () => ({}), clearMetadata() {} } as unknown as KafkaClient
  const settings = { maxWaitTime: 10, maxBytes: 1 << 20, maxBytesPerPartition: 1 << 20 }
  const d = new Delivery(host, guard, client, settings as never, 100)
  return { d, fail }
}

afterEach(() => {
  answers.length = 0
  fetches = 0
})

describe('Delivery one fetch ahead', () => {
  it('holds the answer fetched ahead while the runtime has the records before it, then delivers it', async () => {
    answers.push(batch(['a']), batch(['a', 'b']))
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const seen: string[] = []
    const { d, fail } = delivery(async (b) => {
      seen.push(...b.records.map((r) => r.value!.toString()))
      if (seen.length === 1) await held
    })
    d.ready([{ topic: 't', partition: 0 }])
    d.start()
    await vi.waitFor(() => expect(seen).toEqual(['a']), { timeout: 2000 })
    await new Promise((r) => setTimeout(r, 300))
    // One fetch for 'a', one ahead, then none while 'a' is in the runtime's hands.
    expect(fetches).toBe(2)
    release()
    await vi.waitFor(() => expect(seen).toEqual(['a', 'b']), { timeout: 2000 })
    await d.stop()
    expect(fail).not.toHaveBeenCalled()
  })
})

describe('Delivery of bytes it cannot read', () => {
  it('fails the member, naming the partition and offset, instead of fetching them again forever', async () => {
    const bad = batch(['abc'])
    bad.writeInt8(1, 16) // magic 1: the old message format
    answers.push(bad)
    const { d, fail } = delivery(async () => {})
    d.ready([{ topic: 't', partition: 0 }])
    d.start()
    await vi.waitFor(() => expect(fail).toHaveBeenCalled(), { timeout: 2000 })
    await d.stop()
    const [error, what] = fail.mock.calls[0]!
    expect(error).toBeInstanceOf(BrokerError)
    expect((error as Error).message).toMatch(/t\[0\] holds a batch in the message format of magic 1/)
    expect(what).toBe('reading t[0] at offset 0')
  })

  it('fails the member for a corrupt batch fetched ahead while the one before was being delivered', async () => {
    const corrupt = batch(['x', 'y'])
    corrupt.writeInt32BE(corrupt.readInt32BE(8) - 2, 8) // the last record runs past its batch
    answers.push(batch(['a']), corrupt.subarray(0, corrupt.length - 2))
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const seen: string[] = []
    const { d, fail } = delivery(async (b) => {
      seen.push(...b.records.map((r) => r.value!.toString()))
      await held
    })
    d.ready([{ topic: 't', partition: 0 }])
    d.start()
    await vi.waitFor(() => expect(seen).toEqual(['a']), { timeout: 2000 })
    // The fetch ahead (offset 1) is out while 'a' is in the runtime's hands; then 'a' completes.
    await new Promise((r) => setTimeout(r, 100))
    release()
    await vi.waitFor(() => expect(fail).toHaveBeenCalled(), { timeout: 2000 })
    await d.stop()
    expect((fail.mock.calls[0]![0] as Error).message).toMatch(/malformed/)
  })
})
