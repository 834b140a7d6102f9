import { TestApp } from '@mephisto/testkit'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { describe, expectTypeOf, it } from 'vitest'
import type { Agent, Channel, Message, Stream, StreamEvent, Table, Topic } from '../src/index.js'
import { App, json } from '../src/index.js'

interface Hit {
  userId: string
  hits: number
}

const app = new App({ id: 'types' })
const hits = app.topic<string, Hit>('hits', { value: json<Hit>() })
const counts = app.table<string, number>('counts', { default: () => 0 })

describe('topics', () => {
  it('are typed by their key and value', () => {
    expectTypeOf(hits).toEqualTypeOf<Topic<string, Hit>>()
    expectTypeOf(hits.send).parameter(0).toEqualTypeOf<Message<string, Hit>>()
    expectTypeOf(hits.send).returns.toEqualTypeOf<Promise<void>>()
    void hits.send({ key: 'u1', value: { userId: 'u1', hits: 1 } })
    // @ts-expect-error the value must be a Hit
    void hits.send({ value: { userId: 1, hits: 1 } })
    // @ts-expect-error the key must be a string
    void hits.send({ key: 1, value: { userId: 'u1', hits: 1 } })
    // @ts-expect-error a message, not a bare value
    void hits.send({ userId: 'u1', hits: 1 })
  })

  it('default to string keys and unknown values', () => {
    expectTypeOf(app.topic('plain')).toEqualTypeOf<Topic<string, unknown>>()
  })

  it('infer the value from a Standard Schema', () => {
    const schema = {} as StandardSchemaV1<unknown, Hit>
    const validated = app.topic('validated', { value: schema })
    expectTypeOf(validated).toEqualTypeOf<Topic<string, Hit>>()
  })

  it('take tombstones only when their value type includes null, and then agents see null', () => {
    const schema = {} as StandardSchemaV1<unknown, Hit>
    const orders = app.topic<string, Hit | null>('orders', { value: schema, tombstones: true })
    expectTypeOf(orders).toEqualTypeOf<Topic<string, Hit | null>>()
    void orders.send({ key: 'u1', value: null })
    app.agent(orders, async (stream) => {
      for await (const order of stream) expectTypeOf(order).toEqualTypeOf<Hit | null>()
    })
    expectTypeOf(app.topic('plain-tombstones', { tombstones: true })).toEqualTypeOf<Topic<string, unknown>>()
    // @ts-expect-error a Hit is never null: declare the topic as Topic<string, Hit | null>
    app.topic('inferred', { value: schema, tombstones: true })
    // @ts-expect-error the same with the types written out
    app.topic<string, Hit>('explicit', { value: json<Hit>(), tombstones: true })
    // Saying no is always allowed.
    expectTypeOf(app.topic('refused', { value: schema, tombstones: false })).toEqualTypeOf<
      Topic<string, Hit>
    >()
    // @ts-expect-error without tombstones a topic's value is not null
    void hits.send({ value: null })
  })

  it('channels are typed too', () => {
    const ch = app.channel<number>()
    expectTypeOf(ch).toEqualTypeOf<Channel<number, unknown>>()
    // @ts-expect-error numbers only
    void ch.send({ value: 'one' })
  })
})

describe('tables', () => {
  it('get returns Promise<V>, set takes K and V', () => {
    expectTypeOf(counts).toEqualTypeOf<Table<string, number>>()
    expectTypeOf(counts.get('u1')).toEqualTypeOf<Promise<number>>()
    expectTypeOf(counts.has('u1')).toEqualTypeOf<Promise<boolean>>()
    expectTypeOf(counts.update('u1', (n) => n + 1)).toEqualTypeOf<Promise<number>>()
    expectTypeOf(counts.entries()).toEqualTypeOf<AsyncIterable<[string, number]>>()
    // @ts-expect-error values are numbers
    counts.set('u1', 'one')
    // @ts-expect-error keys are strings
    counts.set(1, 1)
    // @ts-expect-error update must return a number
    void counts.update('u1', (n) => `${n}`)
  })
})

describe('streams', () => {
  it('values are typed by the topic', () => {
    app.agent(
      hits,
      async (stream) => {
        expectTypeOf(stream).toEqualTypeOf<Stream<Hit, string>>()
        for await (const hit of stream) expectTypeOf(hit).toEqualTypeOf<Hit>()
        for await (const e of stream.events()) {
          expectTypeOf(e).toEqualTypeOf<StreamEvent<Hit, string>>()
          expectTypeOf(e.key).toEqualTypeOf<string>()
          expectTypeOf(e.value).toEqualTypeOf<Hit>()
          expectTypeOf(e.offset).toEqualTypeOf<number>()
        }
        for await (const kv of stream.items()) expectTypeOf(kv).toEqualTypeOf<[string, Hit]>()
        for await (const pair of stream.enumerate()) expectTypeOf(pair).toEqualTypeOf<[number, Hit]>()
        for await (const batch of stream.take(10, 1000)) expectTypeOf(batch).toEqualTypeOf<Hit[]>()
      },
      { name: 'typed' },
    )
  })

  it('operators carry the types through', () => {
    app.agent(
      hits,
      async (stream) => {
        expectTypeOf(stream.map((h) => h.hits)).toEqualTypeOf<Stream<number, string>>()
        expectTypeOf(stream.map(async (h) => h.userId)).toEqualTypeOf<Stream<string, string>>()
        expectTypeOf(stream.filter((h) => h.hits > 1)).toEqualTypeOf<Stream<Hit, string>>()
        const big = stream.filter((h): h is Hit & { big: true } => h.hits > 100)
        expectTypeOf(big).toEqualTypeOf<Stream<Hit & { big: true }, string>>()
        expectTypeOf(stream.groupBy((h) => h.hits, { name: 'by-hits' })).toEqualTypeOf<Stream<Hit, number>>()
        expectTypeOf(stream.through(hits)).toEqualTypeOf<Stream<Hit, string>>()
        expectTypeOf(stream.echo(hits)).toEqualTypeOf<Stream<Hit, string>>()
        expectTypeOf(stream.noAck()).toEqualTypeOf<Stream<Hit, string>>()
      },
      { name: 'operators' },
    )
  })
})

describe('agents', () => {
  const doubled = app.topic<string, number>('doubled')
  const double = app.agent(
    hits,
    async function* (stream) {
      for await (const h of stream) yield h.hits * 2
    },
    {
      name: 'double',
      sink: [
        doubled,
        (n) => {
          expectTypeOf(n).toEqualTypeOf<number>()
        },
      ],
    },
  )

  it('ask returns what the generator yields, or undefined', () => {
    expectTypeOf(double).toMatchTypeOf<Agent<Hit, string, number>>()
    expectTypeOf(double.ask({ userId: 'u', hits: 1 })).toEqualTypeOf<Promise<number | undefined>>()
    // @ts-expect-error ask takes the source's value type
    void double.ask(1)
    expectTypeOf(double.cast).parameter(0).toEqualTypeOf<Hit>()
  })

  it('sinks must take what the agent yields', () => {
    const words = app.topic<string, string>('words')
    // The sink fixes R to string, so a generator yielding numbers no longer fits.
    app.agent(
      hits,
      // @ts-expect-error a topic of strings cannot take numbers
      async function* (stream) {
        for await (const h of stream) yield h.hits
      },
      { name: 'bad-sink', sink: [words] },
    )
  })

  it('testkit put returns R | undefined', async () => {
    const t = await TestApp.start(app)
    expectTypeOf(t.agent(double).put).parameter(0).toEqualTypeOf<Hit>()
    expectTypeOf(t.agent(double).put({ userId: 'u', hits: 1 })).toEqualTypeOf<Promise<number | undefined>>()
    expectTypeOf(t.table(counts)).toEqualTypeOf<Table<string, number>>()
    expectTypeOf(t.sent(doubled)[0]!.value).toEqualTypeOf<number | null>()
  })
})
