// Traces through Kafka record headers: a consumer span per event an agent handles, child of the
// context its record carried in; the context of that span injected into what the agent sends
// while handling it; a producer span, injected the same way, for a send from anywhere else. It
// counts nothing (OpenTelemetryMonitor does) and installs no SDK: it uses whatever tracer
// provider and propagator it is given, or the global ones.
import type { Headers, Sensor, StreamEventInfo } from '@mephisto/core'
import { currentStreamEventInfo } from '@mephisto/core'
import type {
  Attributes,
  Context,
  Span,
  TextMapGetter,
  TextMapPropagator,
  TextMapSetter,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api'
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'

/** The instrumentation scope of the tracer (and of the meter of `OpenTelemetryMonitor`). */
export const INSTRUMENTATION_SCOPE = '@mephisto/monitor-opentelemetry'

export interface OpenTelemetryTracingOptions {
  /** Where spans go. Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider
  /**
   * How a context is written to and read from record headers. Default: the global propagator
   * (`propagation`), which the SDK sets to W3C trace context (`traceparent`, `tracestate`) and
   * baggage. Without an SDK (or another global propagator) nothing is propagated.
   */
  propagator?: TextMapPropagator
  /** `messaging.consumer.group.name` on every consumer span: the app's id, its consumer group. */
  consumerGroup?: string
}

/** Record headers as a propagator reads them: Kafka header values are bytes, W3C's are text. */
const headerGetter: TextMapGetter<Readonly<Headers>> = {
  keys: (headers) => Object.keys(headers),
  get: (headers, key) => {
    const value: unknown = headers[key]
    return Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'string' ? value : undefined
  },
}

const headerSetter: TextMapSetter<Headers> = {
  set: (headers, key, value) => {
    headers[key] = Buffer.from(value, 'utf8')
  },
}

const NO_HEADERS: Readonly<Headers> = Object.freeze({})

/**
 * A sensor that traces records through agents with OpenTelemetry, the context carried in record
 * headers (W3C `traceparent`/`tracestate` with the SDK's default propagator):
 *
 * - each event an agent handles is a `process <topic>` span (kind CONSUMER), a child of the
 *   context its record came with, from the moment the agent's stream hands it out until it is
 *   acked (a retried event: one span per attempt). The SDK's sampler decides, parent-based by
 *   default, so a trace sampled at its producer is sampled through every agent it passes;
 * - what an agent sends while handling an event (`topic.send`, `agent.send`, its sinks) carries
 *   that span's context, or the context active in the agent when it is a span of the same trace
 *   (one the agent started under {@link activeContext});
 * - a send from outside an agent (an HTTP handler, a timer, a script) is a `send <topic>` span
 *   (kind PRODUCER), a child of the active context, ended when the send resolves, and carries it.
 *
 * A record whose headers already hold a field of the propagator (the sender set `traceparent`
 * itself) is left as it is. What `groupBy`, `through` and `echo` forward keeps the headers of its
 * event, so the next agent continues the trace of the record that came in.
 *
 * @example
 * app.sensors.add(new OpenTelemetryTracing({ consumerGroup: app.id }))
 */
export class OpenTelemetryTracing implements Sensor {
  /** The tracer spans are started with. */
  readonly tracer: Tracer
  private readonly propagator: TextMapPropagator
  private readonly consumerGroup: string | undefined
  /** The context of each event's span (the span and the baggage its record carried), while handled. */
  private readonly contexts = new WeakMap<StreamEventInfo, Context>()

  constructor(options: OpenTelemetryTracingOptions = {}) {
    this.tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE)
    this.propagator = options.propagator ?? propagation
    this.consumerGroup = options.consumerGroup
  }

  /**
   * The context to run code of the event being handled in: the event's span (with the baggage
   * its record carried) inside an agent, else the active context. Spans started under it are
   * children of the event's span, and sends made under it carry their context:
   *
   * @example
   * for await (const order of stream) {
   *   await context.with(tracing.activeContext(), () => fetchPrice(order)) // an instrumented call
   * }
   */
  activeContext(): Context {
    const event = currentStreamEventInfo()
    return (event && this.contexts.get(event)) ?? context.active()
  }

  /** The span of the event being handled, to add attributes or events to; undefined outside an agent. */
  currentSpan(): Span | undefined {
    const event = currentStreamEventInfo()
    const ctx = event && this.contexts.get(event)
    return ctx && trace.getSpan(ctx)
  }

  onStreamEventIn(event: StreamEventInfo): unknown {
    // An attempt that failed before a retry is closed by onStreamEventOut first, so this one is new.
    const parent = this.propagator.extract(ROOT_CONTEXT, event.headers ?? NO_HEADERS, headerGetter)
    const attributes: Attributes = {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': event.topic,
      'messaging.destination.partition.id': String(event.partition),
      'messaging.kafka.offset': event.offset,
      'mephisto.agent': event.stream,
    }
    if (this.consumerGroup !== undefined) attributes['messaging.consumer.group.name'] = this.consumerGroup
    const span = this.tracer.startSpan(
      `process ${event.topic}`,
      { kind: SpanKind.CONSUMER, attributes },
      parent,
    )
    this.contexts.set(event, trace.setSpan(parent, span))
    return undefined
  }

  onStreamEventOut(event: StreamEventInfo): void {
    const ctx = this.contexts.get(event)
    if (ctx === undefined) return
    this.contexts.delete(event)
    trace.getSpan(ctx)?.end()
  }

  onSendInitiated(topic: string, _bytes: number, headers?: Headers): unknown {
    // No headers: a record forwarded with its event's headers, or sent by the runtime itself.
    if (headers === undefined || this.carriesContext(headers)) return undefined
    const event = currentStreamEventInfo()
    if (event !== undefined) {
      const eventContext = this.contexts.get(event)
      if (eventContext !== undefined)
        this.propagator.inject(this.childOf(eventContext), headers, headerSetter)
      return undefined
    }
    const parent = context.active()
    const span = this.tracer.startSpan(
      `send ${topic}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'send',
          'messaging.destination.name': topic,
        },
      },
      parent,
    )
    this.propagator.inject(trace.setSpan(parent, span), headers, headerSetter)
    return span
  }

  onSendCompleted(state: unknown): void {
    ;(state as Span | undefined)?.end()
  }

  onSendError(state: unknown, _topic: string, error: unknown): void {
    const span = state as Span | undefined
    if (span === undefined) return
    span.recordException(error instanceof Error ? error : String(error))
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message ?? String(error) })
    span.end()
  }

  /** The active context when the agent's code runs in a span of the event's trace, else the event's. */
  private childOf(eventContext: Context): Context {
    const active = context.active()
    const activeSpan = trace.getSpanContext(active)
    if (activeSpan === undefined) return eventContext
    return activeSpan.traceId === trace.getSpanContext(eventContext)?.traceId ? active : eventContext
  }

  private carriesContext(headers: Headers): boolean {
    for (const field of this.propagator.fields()) if (headers[field] !== undefined) return true
    return false
  }
}
