/**
 * Request/reply between callers and agents (`agent.ask`): a correlation id and the asking
 * worker's id (reply-to) travel with the request in its headers; whatever the agent yields for
 * that event (or the event's ack, when it yields nothing) answers it. An ask of this worker is
 * answered here at once; an ask of another worker of the group goes back to it through the
 * replies topic (replies.ts), and the correlation id starts with the asker's id so that the ack
 * path, which sees only the id, knows where to send it.
 */
import { randomUUID } from 'node:crypto'
import type { Agent } from '../agents/agent.js'
import type { Clock, TimerHandle } from '../base/clock.js'
import { ConfigurationError, MephistoError, NotReadyError } from '../base/errors.js'
import { HEADERS } from '../base/headers.js'
import type { Message } from '../topics/topic.js'
import { Topic } from '../topics/topic.js'
import type { Replies, Reply } from './replies.js'

interface PendingAsk {
  agent: string
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  timer: TimerHandle
}

/** Separates the asking worker's id from the rest of a correlation id. */
const ASKER_END = '/'

export class RequestReply {
  private readonly asks = new Map<string, PendingAsk>()

  constructor(
    private readonly clock: Clock,
    /** Marks the requests of this worker (the reply-to header). */
    private readonly workerId: string,
    /** Exactly-once, inside an event: an ask from there would wait on its own transaction. */
    private readonly insideTransaction: () => boolean,
    /** The replies topic: answers to and from the other workers. Without it, only local asks are answered. */
    private readonly replies?: Replies,
  ) {}

  /**
   * Whether an ack must look for a correlation id: an ask of this worker waits, or (with the
   * replies topic) any worker may have asked.
   */
  get waiting(): boolean {
    return this.asks.size > 0 || this.replies !== undefined
  }

  /** Whether an ask of this worker waits for its answer. */
  get asking(): boolean {
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
    const id = `${this.workerId}${ASKER_END}${randomUUID()}`
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.asks.delete(id)
        reject(new MephistoError('ASK_TIMEOUT', `agent ${agent.name} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.asks.set(id, { agent: agent.name, resolve, reject, timer })
    })
    const headers = {
      ...(message.headers ?? {}),
      [HEADERS.correlationId]: id,
      [HEADERS.replyTo]: this.workerId,
    }
    try {
      // Another worker may process an event of a topic: read the replies from before it is sent
      // (and often, now that an ask waits).
      if (agent.source instanceof Topic) await this.replies?.listen()
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

  /**
   * Answers the request with correlation id `id`: here, if it is waiting here; through the
   * replies topic, if another worker asked.
   */
  answer(id: string, value: unknown): void {
    const pending = this.asks.get(id)
    if (pending) {
      this.settle(pending, id)
      pending.resolve(value)
      return
    }
    const end = id.indexOf(ASKER_END)
    const asker = end > 0 ? id.slice(0, end) : undefined
    if (asker !== undefined && asker !== this.workerId) this.replies?.send(asker, id, value)
  }

  /** An answer from another worker, read from the replies topic. */
  replied(id: string, reply: Reply): void {
    const pending = this.asks.get(id)
    if (!pending) return
    this.settle(pending, id)
    if ('error' in reply) {
      pending.reject(
        new MephistoError(
          reply.code,
          `agent ${pending.agent} answered on another worker, but ${reply.error}`,
        ),
      )
    } else {
      pending.resolve(reply.value)
    }
  }

  /** Fails every waiting request: the worker stopped or crashed before the agent answered. */
  rejectAll(message: string, options?: { cause?: unknown }): void {
    this.replies?.stop()
    for (const ask of this.asks.values()) {
      this.clock.clearTimeout(ask.timer)
      ask.reject(new NotReadyError(message, options))
    }
    this.asks.clear()
  }

  private settle(pending: PendingAsk, id: string): void {
    this.asks.delete(id)
    this.clock.clearTimeout(pending.timer)
  }
}
