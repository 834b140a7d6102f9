import type { RawRecord } from '@mephisto/core'
import { App } from '@mephisto/core'
import { TestApp } from '@mephisto/testkit'
import type { Context, Span } from '@opentelemetry/api'
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { ReadableSpan, Sampler } from '@opentelemetry/sdk-trace-base'
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { OpenTelemetryTracing } from '../src/index.js'

// The real SDK: spans end up in an in-memory exporter and are read back from there. Traces
// cross the memory broker only through record headers, so a broken propagation shows as spans
// of separate traces, or with the wrong parents.

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
beforeAll(() => {
  // What an SDK's setup installs: the context manager that makes context.with() reach across awaits.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
})
afterAll(() => {
  context.disable()
})

interface Order {
  id: string
  amount: number
}

function sdk(sampler?: Sampler) {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({
    ...(sampler ? { sampler } : {}),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  })
  cleanups.push(() => provider.shutdown())
  const tracing = new OpenTelemetryTracing({
    tracerProvider: provider,
    propagator: new W3CTraceContextPropagator(),
    consumerGroup: 'shop',
  })
  return { exporter, provider, tracing, tracer: provider.getTracer('test') }
}

/** orders -> price (2 actors) -> priced -> audit (yields to its sink) -> audit_log */
function shop(tracing: OpenTelemetryTracing) {
  const app = new App({ id: 'shop', logger: 'warn' })
  const orders = app.topic<string, Order>('orders', { partitions: 2 })
  const priced = app.topic<string, Order>('priced', { partitions: 1 })
  const auditLog = app.topic<string, Order>('audit_log', { partitions: 1 })
  app.agent(
    orders,
    async (stream) => {
      for await (const order of stream) {
        // Let the other actor run between receiving and sending: contexts must not leak across.
        await new Promise((r) => setImmediate(r))
        await priced.send({ key: order.id, value: { ...order, amount: order.amount * 2 } })
      }
    },
    { name: 'price', concurrency: 2 },
  )
  app.agent(
    priced,
    async function* (stream) {
      for await (const order of stream) yield order
    },
    { name: 'audit', sink: [auditLog] },
  )
  app.sensors.add(tracing)
  return { app, orders, priced, auditLog }
}

async function started(app: App): Promise<TestApp> {
  const t = await TestApp.start(app)
  cleanups.push(() => t.stop())
  return t
}

/** `traceparent` of a record as [traceId, spanId, flags]. */
function traceparent(r: RawRecord): [string, string, string] {
  const value = r.headers.traceparent?.toString()
  expect(value, 'the record has a traceparent header').toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
  const [, traceId, spanId, flags] = value!.split('-')
  return [traceId!, spanId!, flags!]
}

const idOf = (s: ReadableSpan) => s.spanContext().spanId
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId
const traceOf = (s: ReadableSpan) => s.spanContext().traceId

function spanNamed(spans: ReadableSpan[], name: string, where: (s: ReadableSpan) => boolean = () => true) {
  const found = spans.filter((s) => s.name === name && where(s))
  expect(
    found.map((s) => s.name),
    `one span ${name}`,
  ).toEqual([name])
  return found[0]!
}

describe('OpenTelemetryTracing', () => {
  it('carries one trace from a producer through two agents to the output record, parent by parent', async () => {
    const { exporter, tracing, tracer } = sdk()
    const { app, orders } = shop(tracing)
    const t = await started(app)

    // Two requests, each sending one order from inside its own span (as an instrumented HTTP
    // handler would), to different partitions: two traces, handled by two concurrent actors.
    const roots: Span[] = []
    for (const [i, id] of ['o1', 'o2'].entries()) {
      const root = tracer.startSpan(`checkout ${id}`)
      roots.push(root)
      await context.with(trace.setSpan(context.active(), root), () =>
        t.send(orders, { key: id, value: { id, amount: 10 }, partition: i }),
      )
      root.end()
    }
    await t.settle()
    const spans = exporter.getFinishedSpans()
    expect(spans).toHaveLength(2 * 4)

    for (const [i, root] of roots.entries()) {
      const id = `o${i + 1}`
      const traceId = root.spanContext().traceId
      const inTrace = (s: ReadableSpan) => traceOf(s) === traceId
      const checkout = spanNamed(spans, `checkout ${id}`)
      // The producer span: a child of the active span where the send was made.
      const send = spanNamed(spans, 'send orders', inTrace)
      expect(send.kind).toBe(SpanKind.PRODUCER)
      expect(parentOf(send)).toBe(idOf(checkout))
      expect(send.attributes['messaging.destination.name']).toBe('orders')
      // The record carries the producer span's context.
      const input = t.records('orders').find((r) => r.key?.toString() === id)!
      expect(traceparent(input)).toEqual([traceId, idOf(send), '01'])
      // The first agent's span: a consumer span, child of the producer span, from the headers.
      const price = spanNamed(spans, 'process orders', inTrace)
      expect(price.kind).toBe(SpanKind.CONSUMER)
      expect(parentOf(price)).toBe(idOf(send))
      expect(price.attributes).toMatchObject({
        'messaging.system': 'kafka',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'orders',
        'messaging.destination.partition.id': String(i),
        'messaging.kafka.offset': 0,
        'messaging.consumer.group.name': 'shop',
        'mephisto.agent': 'price',
      })
      // What it sent while handling the event carries its span; the next agent's span is its child.
      const middle = t.records('priced').find((r) => r.key?.toString() === id)!
      expect(traceparent(middle)).toEqual([traceId, idOf(price), '01'])
      const audit = spanNamed(spans, 'process priced', inTrace)
      expect(parentOf(audit)).toBe(idOf(price))
      expect(audit.attributes['mephisto.agent']).toBe('audit')
      // The sink's output record: the second agent's span.
      const output = t
        .records('audit_log')
        .find((r) => r.key === null && JSON.parse(r.value!.toString()).id === id)!
      expect(traceparent(output)).toEqual([traceId, idOf(audit), '01'])
      // A span per event, from hand-out to ack: ended, and no sooner than it started.
      for (const s of [send, price, audit]) expect(s.ended).toBe(true)
    }
  })

  it('leaves sampling to the SDK: a trace not sampled at its producer is not sampled downstream, and still carried', async () => {
    const { exporter, tracing } = sdk(new ParentBasedSampler({ root: new AlwaysOffSampler() }))
    const { app, orders } = shop(tracing)
    const t = await started(app)

    // Sent outside any span: a new root, which this sampler drops.
    await t.send(orders, { key: 'o1', value: { id: 'o1', amount: 1 } })
    // A record from a foreign producer whose trace is sampled: the parent decides, so it is.
    const foreignTrace = '4bf92f3577b34da6a3ce929d0e0e4736'
    await t.sendRaw('orders', {
      key: 'o2',
      value: JSON.stringify({ id: 'o2', amount: 2 }),
      headers: { traceparent: `00-${foreignTrace}-00f067aa0ba902b7-01`, tracestate: 'vendor=abc' },
    })
    await t.settle()

    const spans = exporter.getFinishedSpans()
    expect(spans.map((s) => s.name).sort()).toEqual(['process orders', 'process priced'])
    expect(spans.every((s) => traceOf(s) === foreignTrace)).toBe(true)
    const price = spanNamed(spans, 'process orders')
    expect(parentOf(price)).toBe('00f067aa0ba902b7')
    expect(price.parentSpanContext?.isRemote).toBe(true)
    // The unsampled trace still travels, flagged not sampled, so downstream services agree.
    const [unsampledTrace, , flags] = traceparent(
      t.records('orders').find((r) => r.key?.toString() === 'o1')!,
    )
    expect(flags).toBe('00')
    const out = t.records('audit_log').map(traceparent)
    expect(out.map(([traceId, , f]) => `${traceId} ${f}`).sort()).toEqual(
      [`${unsampledTrace} 00`, `${foreignTrace} 01`].sort(),
    )
    // The foreign tracestate rides along with the trace.
    const foreignOut = t.records('audit_log').find((r) => traceparent(r)[0] === foreignTrace)!
    expect(foreignOut.headers.tracestate?.toString()).toBe('vendor=abc')
  })

  it("parents an agent's sends on a span the agent started under activeContext(), and keeps a sender's own traceparent", async () => {
    const { exporter, tracing, tracer } = sdk()
    const app = new App({ id: 'enrich', logger: 'warn' })
    const input = app.topic<string, string>('input', { partitions: 1 })
    const out = app.topic<string, string>('out', { partitions: 1 })
    const own = app.topic<string, string>('own', { partitions: 1 })
    app.agent(input, async (stream) => {
      for await (const v of stream) {
        tracing.currentSpan()?.setAttribute('app.value', v)
        await context.with(tracing.activeContext(), () =>
          tracer.startActiveSpan('enrich', async (span) => {
            await out.send({ value: v })
            span.end()
          }),
        )
        await own.send({
          value: v,
          headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
        })
      }
    })
    app.sensors.add(tracing)
    const t = await started(app)
    expect(tracing.currentSpan()).toBeUndefined()
    await t.send(input, { value: 'x' })
    await t.settle()

    const spans = exporter.getFinishedSpans()
    const process = spanNamed(spans, 'process input')
    expect(process.attributes['app.value']).toBe('x')
    const enrich = spanNamed(spans, 'enrich')
    expect(parentOf(enrich)).toBe(idOf(process))
    expect(traceparent(t.records('out')[0]!)).toEqual([traceOf(process), idOf(enrich), '01'])
    // A context the sender put there is its own: not replaced, and no producer span for it.
    expect(t.records('own')[0]!.headers.traceparent?.toString()).toBe(
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    )
    expect(spans.map((s) => s.name).sort()).toEqual(['enrich', 'process input', 'send input'])
  })

  it('ends a producer span with an error when the send fails, and a span per attempt of a retried event', async () => {
    const { exporter, tracing } = sdk()
    const app = new App({ id: 'fails', logger: 'silent' })
    const input = app.topic<string, string>('input', { partitions: 1 })
    let attempts = 0
    app.agent(
      input,
      async (stream) => {
        for await (const _ of stream) if (attempts++ === 0) throw new Error('once')
      },
      { name: 'flaky', retries: 1, retryBackoffMs: 1 },
    )
    app.sensors.add(tracing)
    const t = await started(app)
    await expect(t.send(input, { value: 'x', partition: 7 })).rejects.toThrow()
    await t.send(input, { value: 'y' })
    for (let i = 0; i < 200 && attempts < 2; i++) await new Promise((r) => setTimeout(r, 5))
    await t.settle()

    const spans = exporter.getFinishedSpans()
    const failed = spans.filter((s) => s.name === 'send input' && s.status.code === SpanStatusCode.ERROR)
    expect(failed).toHaveLength(1)
    expect(failed[0]!.events.map((e) => e.name)).toEqual(['exception'])
    const sent = spanNamed(spans, 'send input', (s) => s.status.code !== SpanStatusCode.ERROR)
    const tries = spans.filter((s) => s.name === 'process input')
    expect(tries).toHaveLength(2)
    expect(tries.map(parentOf)).toEqual([idOf(sent), idOf(sent)])
  })

  it('carries the context under exactly-once too, where outputs are written with the transaction', async () => {
    const { exporter, tracing } = sdk()
    const app = new App({ id: 'eos', logger: 'warn', processingGuarantee: 'exactly_once' })
    const input = app.topic<string, string>('input', { partitions: 2 })
    const out = app.topic<string, string>('out', { partitions: 1 })
    app.agent(input, async (stream) => {
      for await (const v of stream) await out.send({ value: v.toUpperCase() })
    })
    app.sensors.add(tracing)
    const t = await started(app)
    await t.send(input, { value: 'a', partition: 1 })
    await t.settle()
    await t.commit()
    const process = spanNamed(exporter.getFinishedSpans(), 'process input')
    expect(parentOf(process)).toBe(idOf(spanNamed(exporter.getFinishedSpans(), 'send input')))
    expect(t.records('out').map(traceparent)).toEqual([[traceOf(process), idOf(process), '01']])
  })

  it('uses the global tracer provider and propagator by default', async () => {
    const { exporter, provider } = sdk()
    trace.setGlobalTracerProvider(provider)
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
    cleanups.push(() => {
      trace.disable()
      propagation.disable()
    })
    const { app, orders } = shop(new OpenTelemetryTracing())
    const t = await started(app)
    await t.send(orders, { key: 'o1', value: { id: 'o1', amount: 1 } })
    await t.settle()
    const spans = exporter.getFinishedSpans()
    expect(spans.map((s) => s.name).sort()).toEqual(['process orders', 'process priced', 'send orders'])
    expect(new Set(spans.map(traceOf)).size).toBe(1)
    const active: Context = context.active()
    expect(trace.getSpan(active)).toBeUndefined()
  })
})
