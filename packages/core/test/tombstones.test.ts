import { TestApp } from '@mephisto/testkit'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { afterEach, describe, expect, it } from 'vitest'
import type { App, Logger } from '../src/index.js'
import { App as MephistoApp } from '../src/index.js'
import { quietApp } from './helpers.js'

interface Order {
  id: string
  total: number
}

/** What zod's `z.object({ id: z.string(), total: z.number() })` does, by hand. */
const orderSchema: StandardSchemaV1<unknown, Order> = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate(value) {
      const v = value as Partial<Order> | null
      if (typeof v !== 'object' || v === null) return { issues: [{ message: 'expected an object' }] }
      if (typeof v.id !== 'string') return { issues: [{ message: 'expected a string', path: ['id'] }] }
      if (typeof v.total !== 'number') return { issues: [{ message: 'expected a number', path: ['total'] }] }
      return { value: { id: v.id, total: v.total } }
    },
  },
}

const running: TestApp[] = []
async function start(app: App): Promise<TestApp> {
  const t = await TestApp.start(app)
  running.push(t)
  return t
}
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

const order = (id: string, total: number): string => JSON.stringify({ id, total })

describe('tombstones (null values)', () => {
  it('are skipped on a schema topic: acked, counted, logged at debug, never shown to the agent', async () => {
    const debug: { msg: string; fields: Record<string, unknown> | undefined }[] = []
    const logger: Logger = {
      debug: (msg, fields) => debug.push({ msg, fields }),
      info: () => {},
      warn: () => {},
      error: () => {},
    }
    const app = new MephistoApp({ id: 'tombstones-skipped', logger })
    const orders = app.topic('orders', { value: orderSchema, partitions: 1 })
    const seen: [string, Order][] = []
    const agent = app.agent(orders, async (stream) => {
      for await (const [key, value] of stream.items()) seen.push([key, value])
    })
    const t = await start(app)
    await t.sendRaw('orders', { key: 'o1', value: order('o1', 5) })
    await t.sendRaw('orders', { key: 'o1', value: null })
    // A key its codec would refuse does not matter: a skipped tombstone is never decoded.
    await t.sendRaw('orders', { key: Buffer.from([0xff]), value: null })
    await t.sendRaw('orders', { key: 'o2', value: order('o2', 7) })
    await t.settle()

    expect(seen).toEqual([
      ['o1', { id: 'o1', total: 5 }],
      ['o2', { id: 'o2', total: 7 }],
    ])
    expect(t.deadLetters(agent)).toEqual([])
    expect(orders.tombstonesSkipped).toBe(2)
    const logged = debug.filter((d) => d.msg.includes('tombstone'))
    expect(logged.reduce((n, d) => n + (d.fields?.skipped as number), 0)).toBe(2)
    expect(logged.at(-1)?.fields).toMatchObject({ topic: 'orders', partition: 0, skippedOnTopic: 2 })
    await t.commit()
    expect(t.committed(orders).get(0)).toBe(4)
  })

  it('are skipped on a topic without a schema too', async () => {
    const app = quietApp('tombstones-plain')
    const events = app.topic<string, { n: number }>('events', { partitions: 1 })
    const seen: unknown[] = []
    app.agent(events, async (stream) => {
      for await (const e of stream) seen.push(e)
    })
    const t = await start(app)
    await t.sendRaw('events', { key: 'k', value: null })
    await t.send(events, { key: 'k', value: { n: 1 } })
    await t.settle()
    expect(seen).toEqual([{ n: 1 }])
    expect(events.tombstonesSkipped).toBe(1)
  })

  it('reach the agent as null, past the schema, on a topic declared with tombstones: true', async () => {
    const app = quietApp('tombstones-taken')
    const orders = app.topic<string, Order | null>('orders', {
      value: orderSchema,
      tombstones: true,
      partitions: 1,
    })
    const seen: [string, Order | null][] = []
    const agent = app.agent(orders, async (stream) => {
      for await (const [key, value] of stream.items()) seen.push([key, value])
    })
    const t = await start(app)
    await t.sendRaw('orders', { key: 'o1', value: order('o1', 5) })
    await t.sendRaw('orders', { key: 'o1', value: null })
    // Sending null writes a tombstone.
    await t.send(orders, { key: 'o2', value: null })
    // The schema still runs on values that are there.
    await t.sendRaw('orders', { key: 'o3', value: JSON.stringify({ id: 3 }) })
    await t.settle()

    expect(seen).toEqual([
      ['o1', { id: 'o1', total: 5 }],
      ['o1', null],
      ['o2', null],
    ])
    expect(t.records('orders')[2]!.value).toBeNull()
    expect(t.deadLetters(agent).map((d) => [d.sourceOffset, d.code])).toEqual([[3, 'SCHEMA_VALIDATION']])
    expect(orders.tombstonesSkipped).toBe(0)
  })
})
