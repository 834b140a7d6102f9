import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { StreamEvent } from '../src/index.js'
import { quietApp } from './helpers.js'

interface Order {
  id: number
  userId: string
  amount: number
}

const running: TestApp[] = []
async function start(app: Parameters<typeof TestApp.start>[0]): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

describe('stream iteration', () => {
  it('hands values to the agent in offset order within a partition', async () => {
    const app = quietApp('iter')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const seen: number[] = []
    app.agent(numbers, async (stream) => {
      for await (const n of stream) seen.push(n)
    })
    const t = await start(app)
    for (let i = 0; i < 20; i++) await t.send(numbers, { value: i })
    await t.settle()
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  it('acks each event when the next is asked for, so everything read is committed', async () => {
    const app = quietApp('iter-ack')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    app.agent(numbers, async (stream) => {
      for await (const _ of stream) {
        // nothing: the loop asking for the next event is what acks
      }
    })
    const t = await start(app)
    for (let i = 0; i < 5; i++) await t.send(numbers, { value: i })
    await t.settle()
    await t.commit()
    expect(t.committed(numbers).get(0)).toBe(5)
  })
})

describe('events()', () => {
  it('exposes key, value, headers, topic, partition, offset and timestamp', async () => {
    const app = quietApp('events')
    const orders = app.topic<string, Order>('orders', { partitions: 3 })
    const seen: StreamEvent<Order, string>[] = []
    app.agent(orders, async (stream) => {
      for await (const e of stream.events()) seen.push(e)
    })
    const t = await start(app)
    const at = t.clock.now() - 1000
    const meta = await t.send(orders, {
      key: 'u1',
      value: { id: 1, userId: 'u1', amount: 10 },
      headers: { trace: 'abc', bin: Buffer.from([1, 2]) },
      partition: 2,
      timestamp: at,
    })
    await t.send(orders, { key: 'u2', value: { id: 2, userId: 'u2', amount: 5 }, partition: 2 })
    await t.settle()
    expect(seen).toHaveLength(2)
    const [e1, e2] = seen as [StreamEvent<Order, string>, StreamEvent<Order, string>]
    expect(e1.key).toBe('u1')
    expect(e1.value).toEqual({ id: 1, userId: 'u1', amount: 10 })
    expect(e1.header('trace')).toBe('abc')
    expect(e1.headers.bin).toEqual(Buffer.from([1, 2]))
    expect(e1.topic).toBe('orders')
    expect(e1.partition).toBe(2)
    expect(e1.offset).toBe(meta.offset)
    expect(e1.timestamp).toBe(at)
    expect(e2.offset).toBe(meta.offset + 1)
    // Without a timestamp the record gets the (fake) clock's time.
    expect(e2.timestamp).toBe(t.clock.now())
  })
})

describe('items()', () => {
  it('iterates [key, value] pairs', async () => {
    const app = quietApp('items')
    const words = app.topic<string, string>('words', { partitions: 1 })
    const seen: [string, string][] = []
    app.agent(words, async (stream) => {
      for await (const kv of stream.items()) seen.push(kv)
    })
    const t = await start(app)
    await t.send(words, { key: 'a', value: 'apple' })
    await t.send(words, { key: 'b', value: 'banana' })
    await t.settle()
    expect(seen).toEqual([
      ['a', 'apple'],
      ['b', 'banana'],
    ])
  })
})

describe('filter()', () => {
  it('passes only matching values and commits the dropped events too', async () => {
    const app = quietApp('filter')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const seen: number[] = []
    app.agent(numbers, async (stream) => {
      for await (const n of stream.filter((n) => n % 2 === 0)) seen.push(n)
    })
    const t = await start(app)
    // The last two are dropped: if dropping did not ack, the commit would stop at 4.
    for (const n of [0, 1, 2, 3, 4, 5, 7]) await t.send(numbers, { value: n })
    await t.settle()
    await t.commit()
    expect(seen).toEqual([0, 2, 4])
    expect(t.committed(numbers).get(0)).toBe(7)
  })

  it('accepts async predicates', async () => {
    const app = quietApp('filter-async')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const seen: number[] = []
    app.agent(numbers, async (stream) => {
      for await (const n of stream.filter(async (n) => n > 1)) seen.push(n)
    })
    const t = await start(app)
    for (const n of [1, 2, 3]) await t.send(numbers, { value: n })
    await t.settle()
    expect(seen).toEqual([2, 3])
  })
})

describe('map()', () => {
  it('replaces values and keeps each event key, offset and ack', async () => {
    const app = quietApp('map')
    const orders = app.topic<string, Order>('orders', { partitions: 1 })
    const seen: { key: string; value: number; offset: number }[] = []
    app.agent(orders, async (stream) => {
      for await (const e of stream.map(async (o) => o.amount * 2).events()) {
        seen.push({ key: e.key, value: e.value, offset: e.offset })
      }
    })
    const t = await start(app)
    await t.send(orders, { key: 'u1', value: { id: 1, userId: 'u1', amount: 3 } })
    await t.send(orders, { key: 'u2', value: { id: 2, userId: 'u2', amount: 4 } })
    await t.settle()
    await t.commit()
    expect(seen).toEqual([
      { key: 'u1', value: 6, offset: 0 },
      { key: 'u2', value: 8, offset: 1 },
    ])
    expect(t.committed(orders).get(0)).toBe(2)
  })
})

describe('groupBy()', () => {
  function groupByApp() {
    const app = quietApp('shop', { topicPartitions: 4 })
    // Orders keyed by order id: a user's orders are spread over partitions.
    const orders = app.topic<string, Order>('orders', { partitions: 4 })
    const perUser = app.table<string, number>('per-user', { default: () => 0, partitions: 4 })
    const byUser = app.agent(
      orders,
      async (stream) => {
        for await (const order of stream.groupBy((o) => o.userId, { name: 'user' })) {
          perUser.set(order.userId, (await perUser.get(order.userId)) + order.amount)
        }
      },
      { name: 'totals' },
    )
    return { app, orders, perUser, byUser }
  }

  it('repartitions through <app>-<agent>-<name>-repartition keyed by the new key', async () => {
    const { app, orders } = groupByApp()
    const t = await start(app)
    for (let id = 0; id < 12; id++) {
      await t.send(orders, { key: `order-${id}`, value: { id, userId: `user-${id % 3}`, amount: 1 } })
    }
    await t.settle()
    const repartition = t.records('shop-totals-user-repartition')
    expect(repartition).toHaveLength(12)
    const keys = repartition.map((r) => r.key?.toString())
    expect(new Set(keys)).toEqual(new Set(['user-0', 'user-1', 'user-2']))
    // One user, one partition: that is what makes the table shard right.
    for (const user of ['user-0', 'user-1', 'user-2']) {
      const partitions = new Set(
        repartition.filter((r) => r.key?.toString() === user).map((r) => r.partition),
      )
      expect(partitions.size).toBe(1)
    }
  })

  it('counts into a table per new key', async () => {
    const { app, orders, perUser } = groupByApp()
    const t = await start(app)
    const expected = new Map<string, number>()
    for (let id = 0; id < 40; id++) {
      const userId = `user-${id % 5}`
      const amount = (id % 7) + 1
      expected.set(userId, (expected.get(userId) ?? 0) + amount)
      await t.send(orders, { key: `order-${id}`, value: { id, userId, amount } })
    }
    await t.settle()
    for (const [userId, total] of expected) expect(await t.table(perUser).get(userId)).toBe(total)
    await t.commit()
    // Both the source and the repartition topic are committed to their ends.
    const sourceEnd = [...t.committed(orders).values()].filter((o) => o > 0).reduce((a, b) => a + b, 0)
    expect(sourceEnd).toBe(40)
    const repEnd = [...t.committed('shop-totals-user-repartition').values()].filter((o) => o > 0)
    expect(repEnd.reduce((a, b) => a + b, 0)).toBe(40)
  })
})

describe('groupBy() after errors', () => {
  it('keeps forwarding in source order after the agent body failed and restarted', async () => {
    const app = quietApp('regroup', { topicPartitions: 1 })
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const seen: number[] = []
    const agent = app.agent(
      numbers,
      async (stream) => {
        // Keys take a varying time to compute, as a lookup would.
        const byKey = stream.groupBy(
          async (n) => {
            for (let i = 0; i < n % 4; i++) await new Promise((r) => setImmediate(r))
            return 'all'
          },
          { name: 'all' },
        )
        for await (const n of byKey) {
          if (n % 5 === 0) throw new Error(`no multiples of 5 (${n})`)
          seen.push(n)
        }
      },
      { name: 'sorter', retries: 0 },
    )
    const t = await start(app)
    for (let i = 0; i < 40; i++) await t.send(numbers, { value: i })
    await t.settle()
    const forwarded = t.records('regroup-sorter-all-repartition').map((r) => Number(r.value?.toString()))
    expect(forwarded).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i).filter((n) => n % 5 !== 0))
    expect(t.deadLetters(agent)).toHaveLength(8)
  })
})

describe('through()', () => {
  it('forwards every event to the topic and continues with what is read back', async () => {
    const app = quietApp('through', { topicPartitions: 2 })
    const raw = app.topic<string, string>('raw', { partitions: 2 })
    const clean = app.topic<string, string>('clean', { partitions: 2 })
    const seen: { key: string; value: string; topic: string }[] = []
    app.agent(raw, async (stream) => {
      for await (const e of stream.through(clean).events())
        seen.push({ key: e.key, value: e.value, topic: e.topic })
    })
    const t = await start(app)
    await t.send(raw, { key: 'a', value: 'x' })
    await t.send(raw, { key: 'b', value: 'y' })
    await t.settle()
    expect(
      t
        .sent(clean)
        .map((m) => [m.key, m.value])
        .sort(),
    ).toEqual([
      ['a', 'x'],
      ['b', 'y'],
    ])
    expect(seen.sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: 'a', value: 'x', topic: 'clean' },
      { key: 'b', value: 'y', topic: 'clean' },
    ])
  })
})

describe('echo()', () => {
  it('sends every value to each target and hands it on unchanged', async () => {
    const app = quietApp('echo')
    const input = app.topic<string, number>('input', { partitions: 1 })
    const copyA = app.topic<string, number>('copy-a', { partitions: 1 })
    const copyB = app.topic<string, number>('copy-b', { partitions: 1 })
    const seen: number[] = []
    app.agent(input, async (stream) => {
      for await (const n of stream.echo(copyA, copyB)) seen.push(n)
    })
    const t = await start(app)
    for (const n of [1, 2, 3]) await t.send(input, { key: `k${n}`, value: n })
    await t.settle()
    expect(seen).toEqual([1, 2, 3])
    expect(t.sent(copyA).map((m) => [m.key, m.value])).toEqual([
      ['k1', 1],
      ['k2', 2],
      ['k3', 3],
    ])
    expect(t.sent(copyB).map((m) => m.value)).toEqual([1, 2, 3])
  })
})

describe('take()', () => {
  function batchApp() {
    const app = quietApp('batches')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const batches: number[][] = []
    app.agent(numbers, async (stream) => {
      for await (const batch of stream.take(3, 1000)) batches.push(batch)
    })
    return { app, numbers, batches }
  }

  it('hands over full batches as soon as they are full', async () => {
    const { app, numbers, batches } = batchApp()
    const t = await start(app)
    for (let i = 0; i < 6; i++) await t.send(numbers, { value: i })
    await t.settle()
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ])
  })

  it('hands over a partial batch once withinMs passed since its first value', async () => {
    const { app, numbers, batches } = batchApp()
    const t = await start(app)
    for (let i = 0; i < 4; i++) await t.send(numbers, { value: i })
    await t.settle()
    expect(batches).toEqual([[0, 1, 2]])
    await t.advance(999)
    expect(batches).toEqual([[0, 1, 2]])
    await t.send(numbers, { value: 4 })
    await t.settle()
    // The window runs from the batch's first value: 4 joins 3's batch.
    expect(batches).toEqual([[0, 1, 2]])
    await t.advance(1)
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4],
    ])
  })

  it('does not hand over an empty batch when time passes with nothing to read', async () => {
    const { app, batches } = batchApp()
    const t = await start(app)
    await t.advance(10_000)
    expect(batches).toEqual([])
  })

  it('acks a batch when the next one is asked for', async () => {
    const { app, numbers } = batchApp()
    const t = await start(app)
    for (let i = 0; i < 5; i++) await t.send(numbers, { value: i })
    await t.settle()
    await t.commit()
    // First batch handed over and acked when the second was asked for; the second is pending.
    expect(t.committed(numbers).get(0)).toBe(3)
    await t.advance(1000)
    await t.commit()
    expect(t.committed(numbers).get(0)).toBe(5)
  })
})

describe('take() and stopping', () => {
  it('a stop hands over a partial batch at once, and commits it', async () => {
    const app = quietApp('batch-stop', { commitIntervalMs: 1_000_000 })
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const batches: number[][] = []
    app.agent(numbers, async (stream) => {
      for await (const batch of stream.take(3, 60_000)) batches.push(batch)
    })
    const t = await TestApp.start(app)
    for (let i = 0; i < 4; i++) await t.send(numbers, { value: i })
    await t.settle()
    const began = Date.now()
    await t.stop()
    // Not the drain timeout (30 s), and not the batch timeout, which the fake clock never reaches.
    expect(Date.now() - began).toBeLessThan(5000)
    expect(batches).toEqual([[0, 1, 2], [3]])
    expect(t.committed(numbers).get(0)).toBe(4)
  })
})

describe('enumerate()', () => {
  it('numbers values from 0', async () => {
    const app = quietApp('enumerate')
    const words = app.topic<string, string>('words', { partitions: 1 })
    const seen: [number, string][] = []
    app.agent(words, async (stream) => {
      for await (const pair of stream.enumerate()) seen.push(pair)
    })
    const t = await start(app)
    for (const w of ['a', 'b', 'c']) await t.send(words, { value: w })
    await t.settle()
    expect(seen).toEqual([
      [0, 'a'],
      [1, 'b'],
      [2, 'c'],
    ])
  })
})

describe('noAck()', () => {
  it('commits only what the agent acked itself', async () => {
    const app = quietApp('no-ack')
    const numbers = app.topic<string, number>('numbers', { partitions: 1 })
    const held: StreamEvent<number, string>[] = []
    app.agent(numbers, async (stream) => {
      for await (const e of stream.noAck().events()) {
        if (e.value === 2) held.push(e)
        else e.ack()
      }
    })
    const t = await start(app)
    for (let i = 0; i < 5; i++) await t.send(numbers, { value: i })
    await t.settle()
    await t.commit()
    expect(t.committed(numbers).get(0)).toBe(2)
    held[0]!.ack()
    await t.commit()
    expect(t.committed(numbers).get(0)).toBe(5)
  })
})
