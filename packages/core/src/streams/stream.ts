import type { Clock, TimerHandle } from '../base/clock.js'
import { ConfigurationError } from '../base/errors.js'
import type { Codec } from '../topics/codec.js'
import type { ActorContext } from './context.js'
import { actorContext } from './context.js'
import type { StreamEvent } from './event.js'

/** Where a stream's events come from: resolves null when the stream has ended. */
export type Pull = () => Promise<StreamEvent<any, any> | null> | StreamEvent<any, any> | null

/** A destination a stream can forward to (a topic or a channel). */
export interface StreamTarget {
  readonly name: string
}

/** What a stream needs from the running agent. Implemented by the runtime. */
export interface StreamServices {
  readonly clock: Clock
  readonly agentName: string
  /** Sends a value to a topic or channel; resolves once buffered. */
  forward(target: StreamTarget, key: unknown, value: unknown, event: StreamEvent<any, any>): Promise<void>
  /**
   * An agent-private subscription to a topic: the repartition topic of `groupBy` (created when
   * `spec` is given) or the topic of `through`. Returns the pull for its events.
   */
  subscribe(target: StreamTarget | RepartitionSpec): Pull
  /**
   * Runs a background loop for this actor (the forwarding half of groupBy/through), with its own
   * context: the loop marks the event it works on there, so a failure goes to the agent's onError.
   */
  spawn(name: string, loop: (context: ActorContext) => Promise<void>): void
  /** Sensor hooks around each event handed to user code. */
  eventIn(e: StreamEvent<any, any>): void
  eventOut(e: StreamEvent<any, any>): void
}

export interface RepartitionSpec {
  /** `groupBy` name: the topic is `<app>-<agent>-<name>-repartition`. */
  repartition: string
  partitions?: number
  key?: Codec<any>
}

export interface GroupByOptions<K> {
  /** Names the repartition topic; required so the topic name is stable across deploys. */
  name: string
  /** Partitions of the repartition topic (default: the app's `topicPartitions`). */
  partitions?: number
  /** Key codec of the repartition topic (default: strings; pass `json()` for other keys). */
  key?: Codec<K>
}

/**
 * A table a stream joins (`app.table(...)`): what the join reads of it. Structural, so that
 * streams need not import tables (which import streams).
 */
export interface JoinableTable<K, T> {
  readonly name: string
  readonly partitions: number
  /** The app that declared the table: the join asks it for the partitions of the stream's topic. */
  readonly host: object
  /** `global`: a global table (`app.globalTable`), read where the key's hash places it. */
  readonly options?: { readonly global?: boolean }
  has(key: K, options?: { partition?: number }): Promise<boolean>
  get(key: K, options?: { partition?: number }): Promise<T>
}

/** What a join asks of the app. Implemented by the app. */
export interface JoinHost {
  /** The partitions of `topic` on the worker's broker; undefined when the broker has no such topic (a channel). */
  partitionCount(topic: string): Promise<number | undefined>
}

export interface TableJoinOptions {
  /**
   * `'inner'` (default): an event whose key the table does not hold is acked and dropped (a
   * `default` does not count). `'left'`: it is handed on with `undefined` for the table's value.
   */
  type?: 'inner' | 'left'
}

/**
 * The events of an agent's source, as an async iterable of values. Iterating acks each event
 * when the next one is asked for. Operators return new streams over the same events; iterate
 * only one of them.
 */
export class Stream<V, K = unknown> implements AsyncIterable<V> {
  /** @internal */
  constructor(
    /** @internal */ readonly services: StreamServices,
    /** @internal */ readonly pull: Pull,
    /** @internal */ readonly context: ActorContext,
    private readonly autoAck = true,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<V> {
    return this.iterate((e) => e.value as V)
  }

  /** Iterates events: key, value, headers, topic, partition, offset, timestamp, `ack()`. */
  events(): AsyncIterable<StreamEvent<V, K>> {
    return { [Symbol.asyncIterator]: () => this.iterate((e) => e as StreamEvent<V, K>) }
  }

  /** Iterates `[key, value]` pairs. */
  items(): AsyncIterable<[K, V]> {
    return { [Symbol.asyncIterator]: () => this.iterate((e) => [e.key as K, e.value as V]) }
  }

  /** Iterates `[index, value]`, counting from 0. */
  enumerate(): AsyncIterable<[number, V]> {
    let i = 0
    return { [Symbol.asyncIterator]: () => this.iterate((e) => [i++, e.value as V]) }
  }

  /** Events are acked only by `event.ack()`: iterate `events()` and ack when done with each. */
  noAck(): Stream<V, K> {
    return new Stream<V, K>(this.services, this.pull, this.context, false)
  }

  /** Only the values that pass `predicate`; the others are acked as they are dropped. */
  filter<S extends V>(predicate: (value: V) => value is S): Stream<S, K>
  filter(predicate: (value: V) => boolean | Promise<boolean>): Stream<V, K>
  filter(predicate: (value: V) => boolean | Promise<boolean>): Stream<V, K> {
    const { pull, context } = this
    const next = async (): Promise<StreamEvent<any, any> | null> => {
      for (;;) {
        const e = await pull()
        if (e === null) return null
        let keep: boolean
        try {
          keep = await predicate(e.value)
        } catch (err) {
          return failedOn(context, e, err)
        }
        if (keep) return e
        e.ack()
      }
    }
    return this.derive(next)
  }

  /** Each value replaced by `fn(value)`; key, headers and ack stay with the event. */
  map<U>(fn: (value: V) => U | Promise<U>): Stream<Awaited<U>, K> {
    const { pull, context } = this
    const next = async (): Promise<StreamEvent<any, any> | null> => {
      const e = await pull()
      if (e === null) return null
      let value: U
      try {
        value = await fn(e.value)
      } catch (err) {
        return failedOn(context, e, err)
      }
      return e.withValue(value)
    }
    return this.derive(next) as unknown as Stream<Awaited<U>, K>
  }

  /**
   * Each value paired with `table`'s value for the event's key, read from the table partition of
   * the event's partition: `[value, tableValue]`. An inner join (the default) acks and drops events
   * whose key the table does not hold; a left join hands them on as `[value, undefined]`. The
   * table must be co-partitioned with the stream's topic (the same partition count): the first
   * event of each topic checks it, and a mismatch stops the worker with a ConfigurationError.
   */
  join<T>(table: JoinableTable<K, T>, options?: { type?: 'inner' }): Stream<[V, T], K>
  join<T>(table: JoinableTable<K, T>, options: { type: 'left' }): Stream<[V, T | undefined], K>
  join<T>(table: JoinableTable<K, T>, options: TableJoinOptions = {}): Stream<[V, T | undefined], K> {
    const type = options.type ?? 'inner'
    if (type !== 'inner' && type !== 'left') {
      throw new ConfigurationError(
        `stream.join(${table.name}): type must be 'inner' or 'left', not ${String(type)}`,
      )
    }
    const { pull, context } = this
    const checked = new Set<string>()
    const next = async (): Promise<StreamEvent<any, any> | null> => {
      for (;;) {
        const e = await pull()
        if (e === null) return null
        let found: boolean
        let joined: T | undefined
        try {
          // A global table holds every key on every worker: no co-partitioning, its own placement.
          const global = table.options?.global === true
          if (!global && !checked.has(e.topic)) {
            await checkCopartitioned(table, e.topic)
            checked.add(e.topic)
          }
          // Explicit partition: while a stream's operators run, the actor's event is still the previous one.
          const where = global ? undefined : { partition: e.partition }
          found = await table.has(e.key, where)
          joined = found ? await table.get(e.key, where) : undefined
        } catch (err) {
          return failedOn(context, e, err)
        }
        if (found || type === 'left') return e.withValue([e.value, joined])
        e.ack()
      }
    }
    return this.derive(next)
  }

  /**
   * Re-keys the stream through an internal repartition topic, so that events with the same new
   * key land in the same partition (and the same table shard). Call it before the first `await`
   * of the agent body, so the topic is known when the worker subscribes.
   */
  groupBy<NK>(keyOf: (value: V) => NK | Promise<NK>, options: GroupByOptions<NK>): Stream<V, NK> {
    if (!options?.name) {
      throw new TypeError('groupBy needs { name }: it names the repartition topic, which must stay stable')
    }
    const spec: RepartitionSpec = { repartition: options.name }
    if (options.partitions !== undefined) spec.partitions = options.partitions
    if (options.key !== undefined) spec.key = options.key
    const target = { name: options.name, spec }
    const source = this.pull
    const services = this.services
    const grouped = services.subscribe(spec)
    services.spawn(`groupBy:${options.name}`, async (loop) => {
      for (;;) {
        const e = await source()
        if (e === null) return
        loop.event = e
        loop.held = [e]
        await services.forward(target, await keyOf(e.value), e.value, e)
        e.ack()
        loop.held = []
      }
    })
    return this.derive(grouped) as unknown as Stream<V, NK>
  }

  /** Forwards every event to `topic` and continues with the events read back from it. */
  through(topic: StreamTarget): Stream<V, K> {
    const source = this.pull
    const services = this.services
    const pulled = services.subscribe(topic)
    services.spawn(`through:${topic.name}`, async (loop) => {
      for (;;) {
        const e = await source()
        if (e === null) return
        loop.event = e
        loop.held = [e]
        await services.forward(topic, e.key, e.value, e)
        e.ack()
        loop.held = []
      }
    })
    return this.derive(pulled)
  }

  /** Also sends every value to each of `targets`, then hands it on unchanged. */
  echo(...targets: StreamTarget[]): Stream<V, K> {
    const { pull, services, context } = this
    const next = async (): Promise<StreamEvent<any, any> | null> => {
      const e = await pull()
      if (e === null) return null
      try {
        for (const t of targets) await services.forward(t, e.key, e.value, e)
      } catch (err) {
        return failedOn(context, e, err)
      }
      return e
    }
    return this.derive(next)
  }

  /**
   * Batches of up to `max` values; a batch is handed over early once `withinMs` have passed
   * since its first value (on the app's clock). The batch's events are acked together when the
   * next batch is asked for.
   */
  take(max: number, withinMs: number): AsyncIterable<V[]> {
    if (!(max >= 1)) throw new RangeError('take(max, withinMs): max must be at least 1')
    if (!(withinMs > 0)) throw new RangeError('take(max, withinMs): withinMs must be positive')
    const { pull, services, context, autoAck } = this
    let pending: Promise<StreamEvent<any, any> | null> | null = null
    let ended = false
    const next = async (): Promise<IteratorResult<V[]>> => {
      if (autoAck) ackHeld(context)
      if (ended) return { done: true, value: undefined }
      const batch: StreamEvent<any, any>[] = []
      let timer: TimerHandle | undefined
      let expired: (() => void) | undefined
      const timeout = new Promise<'timeout'>((resolve) => {
        expired = () => resolve('timeout')
      })
      try {
        while (batch.length < max) {
          pending ??= Promise.resolve(pull())
          const got = batch.length === 0 ? await pending : await Promise.race([pending, timeout])
          if (got === 'timeout') break
          pending = null
          if (got === null) {
            ended = true
            break
          }
          batch.push(got)
          if (batch.length === 1) {
            timer = services.clock.setTimeout(() => expired?.(), withinMs)
            context.flush = () => expired?.()
          }
        }
      } catch (err) {
        // An operator before take() failed: the batch so far is in hand too, in offset order.
        context.held = [...batch, ...context.held.filter((e) => !batch.includes(e))]
        throw err
      } finally {
        if (timer) services.clock.clearTimeout(timer)
        context.flush = undefined
      }
      if (batch.length === 0) return { done: true, value: undefined }
      context.held = batch
      context.event = batch[batch.length - 1]
      for (const e of batch) services.eventIn(e)
      return { done: false, value: batch.map((e) => e.value as V) }
    }
    return {
      [Symbol.asyncIterator]: () => ({
        next,
        return: async () => ({ done: true, value: undefined }),
      }),
    }
  }

  private derive(pull: Pull): Stream<any, any> {
    return new Stream(this.services, pull, this.context, this.autoAck)
  }

  private iterate<T>(project: (e: StreamEvent<any, any>) => T): AsyncIterator<T> {
    const { pull, services, context, autoAck } = this
    if (actorContext.getStore() !== context && context.agent !== '') {
      // Iterating from outside the actor (a stray task) would attach events to no context.
      throw new Error(`the stream of agent ${context.agent} can only be iterated inside the agent function`)
    }
    const deliver = (e: StreamEvent<any, any> | null): IteratorResult<T> => {
      if (e === null) {
        context.event = undefined
        return { done: true, value: undefined }
      }
      context.event = e
      context.held.push(e)
      services.eventIn(e)
      return { done: false, value: project(e) }
    }
    return {
      next(): Promise<IteratorResult<T>> {
        // An actor abandoned after its event's timeout reads nothing more: another took over.
        if (context.abandoned) return Promise.resolve({ done: true, value: undefined })
        if (autoAck) ackHeld(context)
        else context.held.length = 0
        const got = pull()
        if (got === null || !(got instanceof Promise)) return Promise.resolve(deliver(got))
        return got.then(deliver)
      },
      // Neither break nor throw acks the current event here: the actor decides (done => ack,
      // error => onError policy).
      return: async () => ({ done: true, value: undefined }),
    }
  }
}

/**
 * User code inside an operator (a map function, a filter predicate, a send of echo) failed on
 * `e`: make `e` the event in hand, so the agent's `onError` applies to it rather than treating
 * the failure as one outside any event (which crashes the worker).
 */
function failedOn(context: ActorContext, e: StreamEvent<any, any>, err: unknown): never {
  context.event = e
  if (!context.held.includes(e)) context.held.push(e)
  throw err
}

/**
 * A join reads the table partition numbered like the event's partition, so the table and the
 * topic must have as many partitions. Asks the table's app for the topic's count on the broker
 * (a channel has none: nothing to check).
 */
async function checkCopartitioned(table: JoinableTable<any, any>, topic: string): Promise<void> {
  const host = table.host as Partial<JoinHost>
  if (typeof host.partitionCount !== 'function') return
  const count = await host.partitionCount(topic)
  if (count === undefined || count === table.partitions) return
  throw new ConfigurationError(
    `stream.join(${table.name}): topic ${topic} has ${count} partition(s) but table ${table.name} has ` +
      `${table.partitions}. A join reads the table partition of the event's partition, so both need the ` +
      `same count: declare the table with partitions: ${count}, or re-key the stream into ` +
      `${table.partitions} partitions first with groupBy(fn, { name, partitions: ${table.partitions} }).`,
  )
}

/** Acks what the stream handed out last (the previous event, or the previous batch). */
export function ackHeld(context: ActorContext): void {
  const held = context.held
  if (held.length === 0) return
  for (let i = 0; i < held.length; i++) held[i]!.ack()
  held.length = 0
}
