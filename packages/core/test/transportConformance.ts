import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type {
  ConsumerHandlers,
  RawRecord,
  RecordBatch,
  RecordMetadata,
  TopicPartition,
  Transport,
  TransportConsumer,
} from '../src/index.js'
import { BrokerError, defaultPartition } from '../src/index.js'

/**
 * The behaviour every `Transport` must share, run against the memory broker
 * (`transport.conformance.test.ts`) and Kafka (`kafka/transport.conformance.kafka.test.ts`).
 * It asserts only what the contract in `transport.ts` promises, so both pass or the contract
 * (or an implementation) is wrong.
 */
export interface ConformanceTarget {
  /** A fresh transport; the suite connects and closes it. Two calls may share one broker. */
  transport(): Transport
  /** Upper bound for a group change (join, rebalance) to settle. */
  settleMs: number
  /** `describe`, or `describe.skip` when the target is unavailable. */
  describe?: typeof describe
}

const text = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'))

const byTp = (a: TopicPartition, b: TopicPartition): number =>
  a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition

const sortMeta = (list: RecordMetadata[]): RecordMetadata[] => [...list].sort(byTp)

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A consumer that records what it was handed. */
class Recorder implements ConsumerHandlers {
  readonly records: RawRecord[] = []
  readonly assigned: TopicPartition[][] = []
  readonly revoked: TopicPartition[][] = []
  /** onBatch calls in progress per partition: must never exceed 1. */
  readonly inFlight = new Map<string, number>()
  overlap = false
  onBatchHook: ((batch: RecordBatch) => Promise<void> | void) | undefined
  onRevokeHook: ((tps: TopicPartition[]) => Promise<void> | void) | undefined

  constructor(
    readonly name: string,
    private readonly log: { who: string; what: 'assign' | 'revoke'; tps: TopicPartition[] }[] = [],
  ) {}

  async onAssign(tps: TopicPartition[]): Promise<void> {
    this.assigned.push(tps)
    this.log.push({ who: this.name, what: 'assign', tps })
  }

  async onRevoke(tps: TopicPartition[]): Promise<void> {
    this.revoked.push(tps)
    await this.onRevokeHook?.(tps)
    this.log.push({ who: this.name, what: 'revoke', tps })
  }

  async onBatch(batch: RecordBatch): Promise<void> {
    const key = `${batch.topic}/${batch.partition}`
    const n = (this.inFlight.get(key) ?? 0) + 1
    this.inFlight.set(key, n)
    if (n > 1) this.overlap = true
    try {
      await this.onBatchHook?.(batch)
      this.records.push(...batch.records)
    } finally {
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1)
    }
  }
}

export function transportConformance(name: string, target: ConformanceTarget): void {
  const suite = target.describe ?? describe
  const timeout = target.settleMs * 4 + 30_000

  /** Runs `fn` with a connected transport and fresh topics, deleting them and closing after. */
  async function withTopics(
    specs: { partitions: number; compacted?: boolean }[],
    fn: (t: Transport, topics: string[]) => Promise<void>,
  ): Promise<void> {
    const t = target.transport()
    await t.connect()
    const id = randomUUID().slice(0, 8)
    const topics = specs.map((_, i) => `conformance-${id}-${i}`)
    try {
      await t.admin.ensureTopics(specs.map((s, i) => ({ name: topics[i]!, ...s })))
      await fn(t, topics)
    } finally {
      await t.close()
      const admin = target.transport()
      await admin.connect()
      await admin.admin.deleteTopics(topics).catch(() => {})
      await admin.close()
    }
  }

  const group = (): string => `conformance-group-${randomUUID().slice(0, 8)}`

  suite(`Transport conformance: ${name}`, () => {
    it(
      'flush returns the highest offset written per partition since the previous flush',
      async () => {
        await withTopics([{ partitions: 2 }], async (t, [topic]) => {
          const p = t.producer()
          for (let i = 0; i < 3; i++)
            await p.send({ topic: topic!, partition: 0, key: null, value: Buffer.from(`a${i}`) })
          for (let i = 0; i < 2; i++)
            await p.send({ topic: topic!, partition: 1, key: null, value: Buffer.from(`b${i}`) })
          expect(sortMeta(await p.flush())).toEqual([
            { topic, partition: 0, offset: 2 },
            { topic, partition: 1, offset: 1 },
          ])
          expect(p.pending()).toBe(0)
          expect(await p.flush()).toEqual([])
          await p.send({ topic: topic!, partition: 0, key: null, value: Buffer.from('a3') })
          expect(await p.flush()).toEqual([{ topic, partition: 0, offset: 3 }])
          await p.close()
        })
      },
      timeout,
    )

    it(
      'sendAndWait resolves with the offset the broker gave the record',
      async () => {
        await withTopics([{ partitions: 1 }], async (t, [topic]) => {
          const p = t.producer()
          expect(await p.sendAndWait({ topic: topic!, key: null, value: Buffer.from('x') })).toEqual({
            topic,
            partition: 0,
            offset: 0,
          })
          await p.send({ topic: topic!, key: null, value: Buffer.from('y') })
          // Buffered records before it are written first, so its offset counts them.
          expect((await p.sendAndWait({ topic: topic!, key: null, value: Buffer.from('z') })).offset).toBe(2)
          const ends = await t.admin.endOffsets(topic!)
          expect(ends.get(0)).toBe(3)
          await p.close()
        })
      },
      timeout,
    )

    it(
      'sending to a missing topic fails instead of creating it',
      async () => {
        const t = target.transport()
        await t.connect()
        try {
          const p = t.producer()
          const missing = `conformance-missing-${randomUUID().slice(0, 8)}`
          await expect(p.sendAndWait({ topic: missing, key: null, value: Buffer.from('x') })).rejects.toThrow(
            /does not exist/,
          )
          expect(await t.admin.partitionCount(missing)).toBeUndefined()
        } finally {
          await t.close()
        }
      },
      timeout,
    )

    it(
      'keyed records land on the Java-compatible partition and read() returns ranges in order',
      async () => {
        await withTopics([{ partitions: 3 }], async (t, [topic]) => {
          const p = t.producer()
          const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`)
          for (const [i, k] of keys.entries()) {
            await p.send({
              topic: topic!,
              key: Buffer.from(k),
              value: Buffer.from(String(i)),
              headers: { h: Buffer.from(k) },
            })
          }
          await p.flush()
          const ends = await t.admin.endOffsets(topic!)
          const seen: RawRecord[] = []
          await t.read(
            topic!,
            [0, 1, 2].map((partition) => ({ partition, from: 0, to: ends.get(partition)! })),
            (records) => {
              seen.push(...records)
            },
          )
          expect(seen).toHaveLength(keys.length)
          for (const r of seen) {
            expect(r.partition).toBe(defaultPartition(r.key, 3))
            expect(text(r.headers.h ?? null)).toBe(text(r.key))
          }
          for (const partition of [0, 1, 2]) {
            const offsets = seen.filter((r) => r.partition === partition).map((r) => r.offset)
            expect(offsets).toEqual(Array.from({ length: ends.get(partition)! }, (_, i) => i))
          }

          // A middle range, and an empty one that reads nothing.
          const p0 = ends.get(0)!
          const middle: number[] = []
          await t.read(topic!, [{ partition: 0, from: 1, to: p0 - 1 }], (records) => {
            middle.push(...records.map((r) => r.offset))
          })
          expect(middle).toEqual(Array.from({ length: Math.max(0, p0 - 2) }, (_, i) => i + 1))
          let calls = 0
          await t.read(topic!, [{ partition: 1, from: 5, to: 5 }], () => {
            calls++
          })
          expect(calls).toBe(0)

          // Past the end: an error, not a wait for records that may never come.
          await expect(
            t.read(topic!, [{ partition: 2, from: 0, to: ends.get(2)! + 5 }], () => {}),
          ).rejects.toBeInstanceOf(BrokerError)
          await p.close()
        })
      },
      timeout,
    )

    it(
      'delivers each partition in offset order, one batch at a time',
      async () => {
        await withTopics([{ partitions: 3 }], async (t, [topic]) => {
          const p = t.producer()
          const n = 900
          for (let i = 0; i < n; i++) {
            await p.send({ topic: topic!, key: Buffer.from(`k${i % 17}`), value: Buffer.from(String(i)) })
          }
          await p.flush()
          const rec = new Recorder('c')
          // A slow handler: a second batch of the same partition must wait for it.
          rec.onBatchHook = () => new Promise((r) => setTimeout(r, 2))
          const c = t.consumer({ groupId: group(), maxBatchSize: 50 })
          await c.start([topic!], rec)
          await waitFor('every record', () => rec.records.length >= n, target.settleMs + 20_000)
          await c.stop()
          expect(rec.records).toHaveLength(n)
          expect(rec.overlap).toBe(false)
          for (const partition of [0, 1, 2]) {
            const offsets = rec.records.filter((r) => r.partition === partition).map((r) => r.offset)
            expect(offsets).toEqual(offsets.map((_, i) => i))
          }
          // Per key, values arrive in the order they were sent.
          const lastByKey = new Map<string, number>()
          for (const r of rec.records) {
            const v = Number(text(r.value))
            expect(v).toBeGreaterThan(lastByKey.get(text(r.key)!) ?? -1)
            lastByKey.set(text(r.key)!, v)
          }
          await p.close()
        })
      },
      timeout,
    )

    it(
      'resumes a group from its committed offset',
      async () => {
        await withTopics([{ partitions: 1 }], async (t, [topic]) => {
          const p = t.producer()
          for (let i = 0; i < 100; i++)
            await p.send({ topic: topic!, key: null, value: Buffer.from(String(i)) })
          await p.flush()
          const groupId = group()
          const first = new Recorder('first')
          const c1: TransportConsumer = t.consumer({ groupId })
          await c1.start([topic!], first)
          await waitFor('100 records', () => first.records.length >= 100, target.settleMs + 20_000)
          await c1.commit([{ topic: topic!, partition: 0, offset: 60 }])
          expect(await c1.committed([{ topic: topic!, partition: 0 }])).toEqual([
            { topic, partition: 0, offset: 60 },
          ])
          await c1.stop()
          expect(first.revoked.flat()).toEqual([{ topic, partition: 0 }])
          expect((await t.admin.groupOffsets(groupId, topic!)).get(0)).toBe(60)

          const second = new Recorder('second')
          const c2 = t.consumer({ groupId })
          await c2.start([topic!], second)
          await waitFor(
            'the 40 uncommitted records',
            () => second.records.length >= 40,
            target.settleMs + 20_000,
          )
          expect(second.records[0]!.offset).toBe(60)
          expect(second.records.map((r) => text(r.value))).toEqual(
            Array.from({ length: 40 }, (_, i) => String(60 + i)),
          )
          await c2.stop()

          // Offsets set from outside (reset tools) are where the next member starts.
          await t.admin.setGroupOffsets(groupId, [{ topic: topic!, partition: 0, offset: 95 }])
          const third = new Recorder('third')
          const c3 = t.consumer({ groupId })
          await c3.start([topic!], third)
          await waitFor('5 records', () => third.records.length >= 5, target.settleMs + 20_000)
          expect(third.records[0]!.offset).toBe(95)
          await c3.stop()
          await p.close()
        })
      },
      timeout,
    )

    it(
      'two members split partitions co-partitioned, revoke before assign, and the survivor takes all',
      async () => {
        await withTopics([{ partitions: 4 }, { partitions: 4 }], async (t, topics) => {
          const groupId = group()
          const log: { who: string; what: 'assign' | 'revoke'; tps: TopicPartition[] }[] = []
          const a = new Recorder('a', log)
          const b = new Recorder('b', log)
          const ca = t.consumer({ groupId })
          const cb = t.consumer({ groupId })
          await ca.start(topics, a)
          expect(ca.assignment()).toHaveLength(8)
          await cb.start(topics, b)
          const all = topics.flatMap((topic) => [0, 1, 2, 3].map((partition) => ({ topic, partition })))
          await waitFor(
            'the two members to split the partitions',
            () =>
              ca.assignment().length + cb.assignment().length === 8 &&
              ca.assignment().length > 0 &&
              cb.assignment().length > 0,
            target.settleMs,
          )
          const mine = (c: TransportConsumer, topic: string): number[] =>
            c
              .assignment()
              .filter((tp) => tp.topic === topic)
              .map((tp) => tp.partition)
          // Co-partitioned: partition p of both topics on the same member.
          expect(mine(ca, topics[0]!)).toEqual(mine(ca, topics[1]!))
          expect(mine(cb, topics[0]!)).toEqual(mine(cb, topics[1]!))
          expect([...ca.assignment(), ...cb.assignment()].sort(byTp)).toEqual(all)

          // Records of a partition reach only its owner.
          const p = t.producer()
          for (const topic of topics) {
            for (let partition = 0; partition < 4; partition++) {
              await p.send({ topic, partition, key: null, value: Buffer.from(`${topic}/${partition}`) })
            }
          }
          await p.flush()
          await waitFor('8 records', () => a.records.length + b.records.length >= 8, target.settleMs + 20_000)
          const owns = (c: TransportConsumer, r: RawRecord): boolean =>
            c.assignment().some((tp) => tp.topic === r.topic && tp.partition === r.partition)
          for (const r of a.records) expect(owns(ca, r)).toBe(true)
          for (const r of b.records) expect(owns(cb, r)).toBe(true)

          await cb.stop()
          await waitFor(
            'the survivor to own every partition',
            () => ca.assignment().length === 8,
            target.settleMs,
          )
          // Give the survivor's onAssign time to be recorded.
          await waitFor(
            'the last assign',
            () => log.at(-1)?.who === 'a' && log.at(-1)?.what === 'assign',
            target.settleMs,
          )

          // Replaying the log: a partition is assigned only when nobody holds it.
          const owner = new Map<string, string>()
          for (const entry of log) {
            for (const tp of entry.tps) {
              const key = `${tp.topic}/${tp.partition}`
              if (entry.what === 'assign') {
                expect(
                  owner.get(key),
                  `${key} assigned to ${entry.who} while ${owner.get(key)} held it`,
                ).toBeUndefined()
                owner.set(key, entry.who)
              } else {
                expect(owner.get(key)).toBe(entry.who)
                owner.delete(key)
              }
            }
          }
          expect(b.revoked.flat().length).toBeGreaterThan(0)
          await ca.stop()
          await p.close()
        })
      },
      timeout,
    )

    it(
      'places standbyReplicas copies of each partition number on other members, and a leaver hands its numbers to their copies',
      async () => {
        await withTopics([{ partitions: 6 }], async (t, [topic]) => {
          const groupId = group()
          const names = ['a', 'b', 'c'] as const
          const consumers = names.map(() => t.consumer({ groupId, standbyReplicas: 1 }))
          for (const [i, c] of consumers.entries()) await c.start([topic!], new Recorder(names[i]!))
          const owned = (c: TransportConsumer): number[] => c.assignment().map((tp) => tp.partition)
          const settled = (members: TransportConsumer[]): boolean => {
            const copies = members.flatMap((c) => c.standbys?.() ?? [])
            return (
              members.every((c) => owned(c).length === 6 / members.length) &&
              copies.length === 6 &&
              new Set(copies).size === 6 &&
              members.every((c) => (c.standbys?.() ?? []).every((p) => !owned(c).includes(p)))
            )
          }
          // One copy of each number, never on its owner: not every number on every member.
          await waitFor(
            'three members, each number with one standby copy elsewhere',
            () => settled(consumers),
            target.settleMs + 10_000,
          )

          const [a, b, c] = consumers as [TransportConsumer, TransportConsumer, TransportConsumer]
          const leaving = owned(c)
          const held = new Map([a, b].map((m) => [m, owned(m)]))
          const copyOf = new Map<number, TransportConsumer>()
          for (const m of [a, b])
            for (const p of m.standbys?.() ?? []) if (leaving.includes(p)) copyOf.set(p, m)
          await c.stop()
          await waitFor('the two survivors', () => settled([a, b]), target.settleMs + 10_000)
          // Sticky: the survivors keep what they held; a survivor with a copy of a leaver's number
          // takes one of them (it has the table's state already).
          for (const m of [a, b]) {
            const took = owned(m).filter((p) => leaving.includes(p))
            expect(owned(m)).toEqual(expect.arrayContaining(held.get(m)!))
            expect(took).toHaveLength(1)
            if ([...copyOf.values()].includes(m)) expect(copyOf.get(took[0]!)).toBe(m)
          }
          await a.stop()
          await b.stop()
        })
      },
      timeout,
    )

    it(
      'stop revokes every partition; abort revokes none and leaves the commits as they were',
      async () => {
        await withTopics([{ partitions: 2 }], async (t, [topic]) => {
          const p = t.producer()
          for (let i = 0; i < 10; i++)
            await p.send({ topic: topic!, partition: i % 2, key: null, value: Buffer.from(String(i)) })
          await p.flush()
          const groupId = group()
          const crashed = new Recorder('crashed')
          const c1 = t.consumer({ groupId })
          await c1.start([topic!], crashed)
          await waitFor('10 records', () => crashed.records.length >= 10, target.settleMs + 20_000)
          await c1.commit([{ topic: topic!, partition: 0, offset: 2 }])
          await c1.abort()
          expect(crashed.revoked).toEqual([])
          await expect(c1.commit([{ topic: topic!, partition: 0, offset: 5 }])).rejects.toThrow()

          const next = new Recorder('next')
          const c2 = t.consumer({ groupId })
          await c2.start([topic!], next)
          await waitFor('the redelivery', () => next.records.length >= 8, target.settleMs + 20_000)
          expect(next.records.filter((r) => r.partition === 0)[0]!.offset).toBe(2)
          expect(next.records.filter((r) => r.partition === 1)[0]!.offset).toBe(0)
          await c2.stop()
          expect(next.revoked.flat().sort(byTp)).toEqual([
            { topic, partition: 0 },
            { topic, partition: 1 },
          ])
          await p.close()
        })
      },
      timeout,
    )

    it(
      'a paused partition delivers nothing until resumed',
      async () => {
        await withTopics([{ partitions: 2 }], async (t, [topic]) => {
          const groupId = group()
          const rec = new Recorder('c')
          const c = t.consumer({ groupId })
          await c.start([topic!], rec)
          c.pause([{ topic: topic!, partition: 1 }])
          const p = t.producer()
          for (let i = 0; i < 6; i++)
            await p.send({ topic: topic!, partition: i % 2, key: null, value: Buffer.from(String(i)) })
          await p.flush()
          await waitFor('partition 0', () => rec.records.length >= 3, target.settleMs + 20_000)
          await new Promise((r) => setTimeout(r, 300))
          expect(rec.records.every((r) => r.partition === 0)).toBe(true)
          c.resume([{ topic: topic!, partition: 1 }])
          await waitFor('partition 1 after resume', () => rec.records.length >= 6, target.settleMs + 20_000)
          await c.stop()
          await p.close()
        })
      },
      timeout,
    )

    it(
      'admin: ensureTopics is idempotent; offsets, listing and deletion agree',
      async () => {
        await withTopics([{ partitions: 3, compacted: true }], async (t, [topic]) => {
          await t.admin.ensureTopics([{ name: topic!, partitions: 3, compacted: true }])
          expect(await t.admin.partitionCount(topic!)).toBe(3)
          expect(await t.admin.listTopics()).toContain(topic)
          const p = t.producer()
          await p.send({ topic: topic!, partition: 2, key: Buffer.from('k'), value: Buffer.from('v') })
          await p.flush()
          expect([...(await t.admin.endOffsets(topic!))].sort()).toEqual([
            [0, 0],
            [1, 0],
            [2, 1],
          ])
          expect([...(await t.admin.startOffsets(topic!))].sort()).toEqual([
            [0, 0],
            [1, 0],
            [2, 0],
          ])
          expect([...(await t.admin.groupOffsets(group(), topic!))].sort()).toEqual([
            [0, -1],
            [1, -1],
            [2, -1],
          ])
          await p.close()
          await t.admin.deleteTopics([topic!])
          await waitFor('the topic to go', async () => !(await t.admin.listTopics()).includes(topic!), 10_000)
          expect(await t.admin.partitionCount(topic!)).toBeUndefined()
        })
      },
      timeout,
    )

    it(
      'transactions: records and group offsets commit together; a newer producer with the id fences the older',
      async () => {
        await withTopics([{ partitions: 2 }], async (t, [topic]) => {
          const g = group()
          const id = `conformance-tx-${randomUUID().slice(0, 8)}`
          const older = await t.transactionalProducer(id)
          const meta = await older.commit(
            [
              { topic: topic!, partition: 0, key: null, value: Buffer.from('a') },
              { topic: topic!, partition: 0, key: null, value: Buffer.from('b') },
              { topic: topic!, partition: 1, key: Buffer.from('k'), value: Buffer.from('c') },
            ],
            [{ topic: topic!, partition: 1, offset: 7 }],
            g,
          )
          expect(sortMeta(meta)).toEqual([
            { topic, partition: 0, offset: 1 },
            { topic, partition: 1, offset: 0 },
          ])
          // Kafka applies transactional offsets once the commit marker reaches the offsets topic.
          await waitFor(
            'the offset of the transaction',
            async () => (await t.admin.groupOffsets(g, topic!)).get(1) === 7,
            10_000,
          )
          const newer = await t.transactionalProducer(id)
          await expect(
            older.commit([{ topic: topic!, partition: 0, key: null, value: Buffer.from('zombie') }], [], g),
          ).rejects.toMatchObject({ code: 'FENCED' })
          await newer.commit([{ topic: topic!, partition: 0, key: null, value: Buffer.from('d') }], [], g)
          // What a read-committed reader sees: every committed record, never the zombie's. Kafka
          // answers EndTxn before the commit markers reach the partitions, and the end offset a
          // read-committed client sees (the last stable offset) only passes 'd' once they have.
          let seen: string[] = []
          await waitFor(
            "the newer transaction's record",
            async () => {
              const ends = await t.admin.endOffsets(topic!)
              seen = []
              await t.read(topic!, [{ partition: 0, from: 0, to: ends.get(0)! }], (records) => {
                for (const r of records) seen.push(text(r.value)!)
              })
              return seen.includes('d')
            },
            10_000,
          )
          expect(seen).toEqual(['a', 'b', 'd'])
          await newer.close()
          await older.close()
        })
      },
      timeout,
    )

    it(
      "a member's transactional producer (KIP-447): after a rebalance the group fences it for the partitions it lost; their new owner commits",
      async (ctx) => {
        await withTopics([{ partitions: 2 }], async (t, [topic]) => {
          const groupId = group()
          const id = `conformance-member-tx-${randomUUID().slice(0, 8)}`
          const a = t.consumer({ groupId })
          // Optional in the contract: a transport without it runs exactly-once per partition number.
          if (!a.transactionalProducer) ctx.skip()
          await a.start([topic!], new Recorder('a'))
          expect(a.assignment()).toHaveLength(2)
          const pa = await a.transactionalProducer!(id)
          await pa.commit(
            [{ topic: topic!, partition: 0, key: null, value: Buffer.from('a') }],
            [{ topic: topic!, partition: 1, offset: 1 }],
            groupId,
          )
          const b = t.consumer({ groupId })
          await b.start([topic!], new Recorder('b'))
          await waitFor(
            'the two members to split the partitions',
            () => a.assignment().length === 1 && b.assignment().length === 1,
            target.settleMs,
          )
          const lost = b.assignment()[0]!.partition
          // One producer per member, each of its own id: the group, not the id, fences the old owner.
          const pb = await b.transactionalProducer!(id)
          expect(pb.transactionalId).not.toBe(pa.transactionalId)
          await expect(
            pa.commit(
              [{ topic: topic!, partition: 0, key: null, value: Buffer.from('zombie') }],
              [{ topic: topic!, partition: lost, offset: 5 }],
              groupId,
            ),
          ).rejects.toMatchObject({ code: 'FENCED' })
          await pb.commit(
            [{ topic: topic!, partition: 0, key: null, value: Buffer.from('b') }],
            [{ topic: topic!, partition: lost, offset: 5 }],
            groupId,
          )
          await waitFor(
            "the new owner's offset",
            async () => (await t.admin.groupOffsets(groupId, topic!)).get(lost) === 5,
            10_000,
          )
          // What a read-committed reader sees: both owners' committed records, never the zombie's.
          let seen: string[] = []
          await waitFor(
            "the new owner's record",
            async () => {
              const ends = await t.admin.endOffsets(topic!)
              seen = []
              await t.read(topic!, [{ partition: 0, from: 0, to: ends.get(0)! }], (records) => {
                for (const r of records) seen.push(text(r.value)!)
              })
              return seen.includes('b')
            },
            10_000,
          )
          expect(seen).toEqual(['a', 'b'])
          await pa.close()
          await pb.close()
          await b.stop()
          await a.stop()
        })
      },
      timeout,
    )
  })
}
