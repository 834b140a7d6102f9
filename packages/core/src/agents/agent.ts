import { ConfigurationError } from '../base/errors.js'
import type { StreamEvent } from '../streams/event.js'
import type { Stream } from '../streams/stream.js'
import type { Channel, Message, Topic } from '../topics/topic.js'

/** What happens to an event whose processing threw. */
export type ErrorAction = 'dlq' | 'crash' | 'skip'

/** Decides per error; return an action, or nothing to skip the event. */
export type ErrorHandler<V, K> = (
  error: unknown,
  event: StreamEvent<V, K> | undefined,
) => ErrorAction | undefined | void | Promise<ErrorAction | undefined | void>

/** Where the values an agent yields go. */
export type Sink<R> = Topic<any, R> | Channel<R> | Agent<R, any, any> | ((value: R) => void | Promise<void>)

export interface AgentOptions<V, K, R> {
  /** Default: the function's name, else `<source>-agent`. Must be unique in the app. */
  name?: string
  /** Actors reading the stream at once. More than one gives up per-partition order. */
  concurrency?: number
  /** Each yielded value is sent to every sink. */
  sink?: Sink<R>[]
  /** Default `'dlq'`. */
  onError?: ErrorAction | ErrorHandler<V, K>
  /** Attempts after the first failure before `onError` applies to the event (default 2). */
  retries?: number
  /** First retry delay in ms, doubled per attempt (real time, not the app clock). Default 50. */
  retryBackoffMs?: number
  /**
   * The longest an event may take (real time, from when the agent got it until it asks for the
   * next). Past it the event fails with EVENT_TIMEOUT under `onError` (retries, then the dead
   * letters by default), a new actor takes over, and the stuck one's later sends and table writes
   * are refused. Default: no limit.
   */
  eventTimeoutMs?: number
  /** Dead-letter topic (default `<app>-<source>-dlq`). */
  dlq?: string
}

/** The agent body: an async function over the stream, or an async generator yielding results. */
export type AgentFn<V, K, R> = (stream: Stream<V, K>) => Promise<void> | AsyncIterable<R>

export interface AskOptions<K> {
  key?: K
  /** Default 30 000 ms (app clock). */
  timeoutMs?: number
  partition?: number
}

/** How an agent reaches the running app. Implemented by the app. */
export interface AgentHost {
  readonly id: string
  ask(agent: Agent<any, any, any>, message: Message<any, any>, timeoutMs: number): Promise<unknown>
}

/** A stream processor bound to one topic or channel. Create with `app.agent(source, fn)`. */
export class Agent<V = unknown, K = unknown, R = unknown> {
  readonly name: string
  readonly concurrency: number
  readonly onError: ErrorAction | ErrorHandler<V, K>
  readonly retries: number
  readonly retryBackoffMs: number
  readonly eventTimeoutMs: number | undefined
  readonly sinks: readonly Sink<R>[]
  /**
   * Every topic or channel the agent reads: `source` first, then the others of
   * `app.agent([a, b], fn)`. One stream carries the events of all of them, each with its topic.
   */
  readonly sources: readonly (Topic<K, V> | Channel<V, K>)[]

  /** @internal */
  constructor(
    readonly source: Topic<K, V> | Channel<V, K>,
    readonly fn: AgentFn<V, K, R>,
    readonly options: Readonly<AgentOptions<V, K, R>>,
    /** @internal */ readonly host: AgentHost,
    /** Further topics the agent reads besides `source` (`app.agent([a, b], fn)`). */
    more: readonly Topic<K, V>[] = [],
  ) {
    if (typeof fn !== 'function') throw new ConfigurationError('app.agent(source, fn): fn must be a function')
    this.sources = [source, ...more]
    this.name = options.name ?? (fn.name && fn.name !== 'anonymous' ? fn.name : `${source.name}-agent`)
    this.concurrency = options.concurrency ?? 1
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new ConfigurationError(`agent ${this.name}: concurrency must be a positive integer`)
    }
    this.onError = options.onError ?? 'dlq'
    if (typeof this.onError === 'string' && !['dlq', 'crash', 'skip'].includes(this.onError)) {
      throw new ConfigurationError(`agent ${this.name}: onError must be 'dlq', 'crash', 'skip' or a function`)
    }
    this.retries = options.retries ?? 2
    this.retryBackoffMs = options.retryBackoffMs ?? 50
    this.eventTimeoutMs = options.eventTimeoutMs
    if (
      this.eventTimeoutMs !== undefined &&
      !(Number.isFinite(this.eventTimeoutMs) && this.eventTimeoutMs > 0)
    ) {
      throw new ConfigurationError(`agent ${this.name}: eventTimeoutMs must be a positive number of ms`)
    }
    this.sinks = options.sink ?? []
  }

  /** The dead-letter topic of this agent. */
  get dlqTopic(): string {
    return this.options.dlq ?? `${this.host.id}-${this.source.name}-dlq`
  }

  /** Sends a message to the agent's source. */
  async send(message: Message<K, V>): Promise<void> {
    await this.source.send(message)
  }

  /** Sends a value to the agent without waiting for a result. */
  async cast(value: V, options?: { key?: K; partition?: number }): Promise<void> {
    await this.source.send({ ...options, value })
  }

  /**
   * Sends a value and resolves with what the agent yields while processing it (undefined when it
   * yields nothing). Any worker may ask: when another worker processes the value (its key's
   * partition is owned there), the answer comes back through the app's replies topic.
   */
  async ask(value: V, options?: AskOptions<K>): Promise<R | undefined> {
    const message: Message<K, V> = { value }
    if (options?.key !== undefined) message.key = options.key
    if (options?.partition !== undefined) message.partition = options.partition
    return (await this.host.ask(this, message, options?.timeoutMs ?? 30_000)) as R | undefined
  }
}
