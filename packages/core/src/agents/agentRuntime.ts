import { ConfigurationError, MephistoError } from '../base/errors.js'
import type { ActorContext } from '../streams/context.js'
import { actorContext } from '../streams/context.js'
import type { StreamEvent } from '../streams/event.js'
import { EventQueue } from '../streams/eventQueue.js'
import type { Pull, RepartitionSpec, StreamServices, StreamTarget } from '../streams/stream.js'
import { ackHeld, Stream } from '../streams/stream.js'
import type { Channel } from '../topics/topic.js'
import { Topic } from '../topics/topic.js'
import type { Agent, ErrorAction } from './agent.js'
import type { AgentRuntimeHost } from './runtimeHost.js'

export type { AgentRuntimeHost } from './runtimeHost.js'

import { EventWatchdog } from './eventWatchdog.js'

/**
 * One agent inside a running worker: its input queue, its actors, and the private queues of
 * its `groupBy`/`through` subscriptions.
 */
export class AgentRuntime {
  readonly queue: EventQueue<StreamEvent<any, any>>
  private readonly privateQueues = new Map<string, EventQueue<StreamEvent<any, any>>>()
  private readonly loops = new Set<Promise<void>>()
  private liveLoops = 0
  private busyRetries = 0
  private readonly attempts = new WeakMap<StreamEvent<any, any>, number>()
  private readonly contexts = new Set<ActorContext>()
  /** Each actor's loop, so an actor abandoned after its event's timeout can be let go. */
  private readonly actorLoops = new Map<ActorContext, { loop: Promise<void>; index: number }>()
  /** Loops let go of: no longer counted when they end. */
  private readonly released = new WeakSet<Promise<void>>()
  private readonly watchdog: EventWatchdog
  /** Background loops running, by actor and operator: an agent body restarted after an error reuses them. */
  private readonly spawned = new Set<string>()
  stopped = false

  constructor(
    readonly agent: Agent<any, any, any>,
    private readonly worker: AgentRuntimeHost,
    capacity: number,
  ) {
    this.queue = new EventQueue(capacity)
    this.watchdog = new EventWatchdog(
      () => this.contexts,
      agent.eventTimeoutMs,
      (context, ageMs) => this.timedOut(context, ageMs),
    )
  }

  /** Milliseconds the oldest event in progress has been in an actor's hands (0: none). */
  oldestEventAgeMs(): number {
    return this.watchdog.oldestAgeMs()
  }

  /** Every queue that feeds this agent: the source and the private subscriptions. */
  queues(): EventQueue<StreamEvent<any, any>>[] {
    return [this.queue, ...this.privateQueues.values()]
  }

  /** Nothing queued, and every loop is waiting for an event (or has ended). */
  idle(): boolean {
    if (this.busyRetries > 0) return false
    let waiting = 0
    for (const q of this.queues()) {
      if (q.size > 0) return false
      waiting += q.waiting
    }
    return waiting >= this.liveLoops
  }

  start(): void {
    for (let i = 0; i < this.agent.concurrency; i++) this.startActor(i)
    this.watchdog.start()
  }

  private startActor(index: number): void {
    const ctx: ActorContext = { event: undefined, held: [], agent: this.agent.name }
    this.contexts.add(ctx)
    const loop = this.runActor(index, ctx)
    this.actorLoops.set(ctx, { loop, index })
    this.track(loop)
  }

  /** Actors holding a partial `take()` batch hand it over now (their partitions are being revoked). */
  flushBatches(): void {
    for (const ctx of this.contexts) ctx.flush?.()
  }

  /** Closes the queues: actors finish their current event and their loops end. */
  close(): void {
    this.stopped = true
    this.watchdog.stop()
    for (const q of this.queues()) q.close()
  }

  async join(timeoutMs: number): Promise<boolean> {
    if (this.loops.size === 0) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    const done = Promise.allSettled([...this.loops]).then(() => true as const)
    const ok = await Promise.race([done, timedOut])
    clearTimeout(timer)
    return ok
  }

  private track(p: Promise<void>): void {
    this.liveLoops++
    this.loops.add(p)
    const done = (): void => {
      if (this.released.has(p)) return
      this.liveLoops--
      this.loops.delete(p)
    }
    p.then(done, (err: unknown) => {
      done()
      // A loop failed outside the paths that handle errors: never an unhandled rejection.
      if (this.stopped || this.worker.dead) return
      this.worker.logger.error(
        `agent ${this.agent.name}: an actor failed unexpectedly; restarting the worker`,
        {
          err,
        },
      )
      void this.worker.restart(err)
    })
  }

  private services(actor: number): StreamServices {
    return {
      clock: this.worker.clock,
      agentName: this.agent.name,
      forward: (target, key, value, event) => {
        const dest =
          'spec' in target ? this.worker.repartitionTopic(this.agent, target.spec as RepartitionSpec) : target
        return this.worker.forward(dest as Topic<any, any> | Channel<any, any>, key, value, event)
      },
      subscribe: (target) => this.subscribe(target),
      spawn: (name, loop) => this.spawn(`${actor}:${name}`, name, loop),
      eventIn: (e) => this.worker.eventIn(this.agent.name, e),
      eventOut: () => {},
    }
  }

  private subscribe(target: StreamTarget | RepartitionSpec): Pull {
    const topic = ('repartition' in target ? this.worker.repartitionTopic(this.agent, target) : target) as
      | Topic<any, any>
      | Channel<any, any>
    let q = this.privateQueues.get(topic.name)
    if (!q) {
      if (this.worker.subscribed && topic instanceof Topic) {
        throw new ConfigurationError(
          `agent ${this.agent.name}: ${topic.name} was subscribed after the worker started. Call groupBy()/through() ` +
            `before the first await in the agent function, so the topic is known when the worker joins the group.`,
        )
      }
      q = new EventQueue(this.queue.capacity)
      this.privateQueues.set(topic.name, q)
      this.worker.addSubscriber(topic, this.agent, q)
    }
    return this.worker.pullFrom(q)
  }

  private spawn(key: string, name: string, loop: (context: ActorContext) => Promise<void>): void {
    // The body runs again after an error (retry, dlq, skip) and calls groupBy()/through() again:
    // the loop forwarding for it is still running, and a second one would compete with it.
    if (this.spawned.has(key)) return
    this.spawned.add(key)
    const ctx: ActorContext = { event: undefined, held: [], agent: `${this.agent.name}:${name}` }
    this.track(
      actorContext
        .run(ctx, async () => {
          while (!this.stopped) {
            try {
              await loop(ctx)
              return
            } catch (err) {
              if (this.stopped || this.worker.dead) return
              // The event the loop was forwarding gets the agent's onError (retry, dlq, skip, crash);
              // then the loop starts over with the next one.
              const action = await this.onError(err, ctx, -1)
              if (action === 'crash') return
            }
          }
        })
        .finally(() => this.spawned.delete(key)),
    )
  }

  private async runActor(index: number, ctx: ActorContext): Promise<void> {
    const pull: Pull = this.worker.pullFrom(this.queue)
    await actorContext.run(ctx, async () => {
      while (!this.stopped) {
        const stream = new Stream<any, any>(this.services(index), pull, ctx)
        try {
          const result = this.agent.fn(stream)
          if (result && typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
            for await (const value of result as AsyncIterable<unknown>)
              await this.worker.yielded(this.agent, ctx, value)
          } else {
            await result
          }
          // An actor abandoned after its event's timeout ends here, quietly: another took over.
          if (ctx.abandoned) return
          // The body returned (its stream ended or it broke out): what it held is done.
          ackHeld(ctx)
          if (!this.stopped && !this.worker.dead) await this.returned(index)
          return
        } catch (err) {
          if (this.stopped || this.worker.dead || ctx.abandoned) return
          const action = await this.onError(err, ctx, index)
          if (action === 'crash') return
        }
      }
    })
  }

  /**
   * An actor held its event past the agent's `eventTimeoutMs`. Its user code cannot be
   * interrupted, so the actor is abandoned: its stream ends and its later sends and table writes
   * are refused (streams/context.ts); the event fails with EVENT_TIMEOUT under `onError`
   * (retried by a new actor, dead-lettered, skipped, or a crash); and a new actor takes over.
   */
  private timedOut(ctx: ActorContext, ageMs: number): void {
    if (ctx.abandoned || this.stopped || this.worker.dead) return
    ctx.abandoned = true
    this.contexts.delete(ctx)
    const actor = this.actorLoops.get(ctx)
    this.actorLoops.delete(ctx)
    if (!actor) return
    const { loop, index } = actor
    if (this.loops.delete(loop)) {
      this.released.add(loop)
      this.liveLoops--
    }
    const first = ctx.held[0]?.root
    const err = new MephistoError(
      'EVENT_TIMEOUT',
      `agent ${this.agent.name}: ${first ? `${first.topic}[${first.partition}]@${first.offset}` : 'an event'} ` +
        `was still in progress after ${Math.round(ageMs)} ms (eventTimeoutMs ${this.agent.eventTimeoutMs}); ` +
        'a new actor takes over, and the stuck one may no longer send or write tables',
    )
    this.worker.logger.error(err.message)
    void (async () => {
      const action = await this.onError(err, ctx, index)
      if (action !== 'crash' && !this.stopped && !this.worker.dead) this.startActor(index)
    })().catch((e: unknown) => void this.worker.restart(e))
  }

  /**
   * The body returned or broke out of its loop while the worker runs: its partitions would no
   * longer be read, silently. That is a bug in the agent, so the worker stops, loudly.
   */
  private async returned(index: number): Promise<void> {
    const err = new MephistoError(
      'AGENT_FAILED',
      `agent ${this.agent.name} (actor ${index}) returned while the worker runs, so nothing would read its ` +
        'stream any more. An agent reads its stream for as long as the worker runs: skip an event with ' +
        '`continue`, not `break` or `return`.',
    )
    this.worker.logger.error(err.message)
    await this.worker.crash(err)
  }

  /** Applies the agent's `onError` to what the actor held when it threw. */
  private async onError(err: unknown, ctx: ActorContext, index: number): Promise<ErrorAction | 'retry'> {
    const held = ctx.held.splice(0)
    const event = ctx.event
    ctx.event = undefined
    const name = this.agent.name
    if (
      err instanceof ConfigurationError ||
      (err instanceof MephistoError && err.code === 'CO_PARTITIONING')
    ) {
      // Not bad data: every event would fail the same way, so retrying or dead-lettering them
      // would only bury the mistake under dead letters. Stop, nothing acked; the error names the fix.
      const at = held[0] ? ` at ${held[0].root.topic}[${held[0].root.partition}]@${held[0].root.offset}` : ''
      this.worker.logger.error(
        `agent ${name}: a configuration error${at}; stopping the worker (onError does not apply to ` +
          'configuration errors). Fix the configuration and start again: the event is processed again then.',
        { err },
      )
      await this.worker.crash(err)
      return 'crash'
    }
    if (held.length === 0) {
      // Nothing to retry, skip or dead-letter: restarting would fail the same way forever.
      this.worker.logger.error(`agent ${name} (actor ${index}) failed outside any event`, { err })
      await this.worker.crash(err)
      return 'crash'
    }
    const first = held[0]!.root
    // A write to a closed window of a table whose lateEvents is 'deadLetter': the table's policy
    // decides, and a retry would be as late.
    const late = err instanceof MephistoError && err.code === 'LATE_EVENT'
    const attempt = (this.attempts.get(first) ?? 0) + 1
    if (!late && attempt <= this.agent.retries && this.agent.onError !== 'crash') {
      this.attempts.set(first, attempt)
      this.worker.logger.warn(
        `agent ${name} failed; retrying (attempt ${attempt} of ${this.agent.retries})`,
        {
          err,
          topic: first.topic,
          partition: first.partition,
          offset: first.offset,
        },
      )
      this.busyRetries++
      try {
        await new Promise((r) => setTimeout(r, this.agent.retryBackoffMs * 2 ** (attempt - 1)))
      } finally {
        this.busyRetries--
      }
      for (let i = held.length - 1; i >= 0; i--) {
        const root = held[i]!.root
        this.attempts.set(root, attempt)
        this.worker.handBack(root)
        const origin = root.origin ?? this.queue
        origin.unshift(root)
      }
      return 'retry'
    }
    let action: ErrorAction
    const policy = this.agent.onError
    if (late) {
      action = 'dlq'
    } else if (typeof policy === 'function') {
      let chosen: unknown
      try {
        chosen = await policy(err, event)
      } catch (handlerErr) {
        this.worker.logger.error(`agent ${name}: onError handler threw; crashing`, { err: handlerErr })
        chosen = 'crash'
      }
      if (chosen !== undefined && chosen !== 'dlq' && chosen !== 'skip' && chosen !== 'crash') {
        // A typo in the handler would otherwise skip every failing event: stop instead.
        const bad = new ConfigurationError(
          `agent ${name}: onError returned ${JSON.stringify(chosen)}; return 'dlq', 'skip', 'crash' or nothing (skip)`,
          { cause: err },
        )
        this.worker.logger.error(bad.message)
        await this.worker.crash(bad)
        return 'crash'
      }
      action = (chosen as ErrorAction | undefined) ?? 'skip'
    } else {
      action = policy
    }
    if (action === 'crash') {
      this.worker.logger.error(`agent ${name} failed; onError is 'crash': stopping without committing`, {
        err,
      })
      await this.worker.crash(
        new MephistoError('AGENT_FAILED', `agent ${name} failed: ${(err as Error)?.message ?? err}`, {
          cause: err,
        }),
      )
      return 'crash'
    }
    for (const e of held) {
      if (action === 'dlq') {
        try {
          await this.worker.deadLetter(e.root, err, this.agent)
        } catch (dlqErr) {
          // The event is not acked: it is processed again by the worker that replaces this one.
          this.worker.logger.error(
            `agent ${name}: the dead letter of ${e.root.topic}[${e.root.partition}]@${e.root.offset} could not be ` +
              'written; rolling back to the last commit and restarting the worker',
            { err: dlqErr },
          )
          void this.worker.restart(dlqErr)
          return 'crash'
        }
      } else {
        this.worker.skipped(this.agent, e.root, err)
      }
      e.ack()
    }
    return action
  }
}
