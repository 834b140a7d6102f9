/**
 * Request/reply between callers and agents (`agent.ask`): a correlation id travels with the
 * request in its headers; whatever the agent yields for that event (or the event's ack, when
 * it yields nothing) answers it. Only callers in this process are answered.
 */
import { randomUUID } from 'node:crypto'
import type { Agent } from '../agents/agent.js'
import type { Clock, TimerHandle } from '../base/clock.js'
import { ConfigurationError, MephistoError, NotReadyError } from '../base/errors.js'
import { HEADERS } from '../base/headers.js'
import type { Message } from '../topics/topic.js'

interface PendingAsk {
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  timer: TimerHandle
}

export class RequestReply {
  private readonly asks = new Map<string, PendingAsk>()

  constructor(
    private readonly clock: Clock,
    /** Marks the requests of this worker (the reply-to header). */
    private readonly workerId: string,
    /** Exactly-once, inside an event: an ask from there would wait on its own transaction. */
    private readonly insideTransaction: () => boolean,
  ) {}

  /** Any request waiting for an answer (the ack path checks this before reading headers). */
  get waiting(): boolean {
    return this.asks.size > 0
  }

  async ask(agent: Agent<any, any, any>, message: Message<any, any>, timeoutMs: number): Promise<unknown> {
    if (this.insideTransaction()) {
      throw new ConfigurationError(
        `ask ${agent.name} from inside an agent is not available under exactly_once: the request is ` +
          "written when the event's transaction commits, which waits for this agent to finish the event. " +
          'Use send() and let the other agent answer on a topic.',
      )
    }
    const id = randomUUID()
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.asks.delete(id)
        reject(new MephistoError('ASK_TIMEOUT', `agent ${agent.name} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.asks.set(id, { resolve, reject, timer })
    })
    const headers = {
      ...(message.headers ?? {}),
      [HEADERS.correlationId]: id,
      [HEADERS.replyTo]: this.workerId,
    }
    try {
      await agent.source.send({ ...message, headers })
    } catch (err) {
      const pending = this.asks.get(id)
      if (pending) {
        this.clock.clearTimeout(pending.timer)
        this.asks.delete(id)
      }
      throw err
    }
    return reply
  }

  /** Answers the request with correlation id `id`, if it is still waiting here. */
  answer(id: string, value: unknown): void {
    const pending = this.asks.get(id)
    if (!pending) return
    this.asks.delete(id)
    this.clock.clearTimeout(pending.timer)
    pending.resolve(value)
  }

  /** Fails every waiting request: the worker stopped or crashed before the agent answered. */
  rejectAll(message: string, options?: { cause?: unknown }): void {
    for (const ask of this.asks.values()) {
      this.clock.clearTimeout(ask.timer)
      ask.reject(new NotReadyError(message, options))
    }
    this.asks.clear()
  }
}
