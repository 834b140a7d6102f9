/**
 * What an agent's runtime needs of the worker it runs in, as an interface the agents own: the
 * worker implements it, so agents never import the worker.
 */
import type { Clock } from '../base/clock.js'
import type { Logger } from '../base/logger.js'
import type { ActorContext } from '../streams/context.js'
import type { StreamEvent } from '../streams/event.js'
import type { EventQueue } from '../streams/eventQueue.js'
import type { Pull, RepartitionSpec } from '../streams/stream.js'
import type { Channel, Topic } from '../topics/topic.js'
import type { Agent } from './agent.js'

/** What an agent's runtime needs of the worker it runs in. Implemented by the worker. */
export interface AgentRuntimeHost {
  readonly clock: Clock
  readonly logger: Logger
  /** Crashed or stopped: actors end instead of handling errors. */
  readonly dead: boolean
  /** The consumer subscribed already: no topic can be added any more. */
  readonly subscribed: boolean
  /** The repartition topic of a `groupBy` of `agent`. */
  repartitionTopic(agent: Agent<any, any, any>, spec: RepartitionSpec): Topic<any, any>
  /** `queue` of `agent` receives the events of `topic`. */
  addSubscriber(
    topic: Topic<any, any> | Channel<any, any>,
    agent: Agent<any, any, any>,
    queue: EventQueue<StreamEvent<any, any>>,
  ): void
  /** How an actor takes events from `queue`. */
  pullFrom(queue: EventQueue<StreamEvent<any, any>>): Pull
  /** An event goes back to its queue unacked (a retry). */
  handBack(event: StreamEvent<any, any>): void
  /** A stream handed an event to user code. */
  eventIn(agent: string, event: StreamEvent<any, any>): void
  /** What groupBy/through/echo send. */
  forward(
    target: Topic<any, any> | Channel<any, any>,
    key: unknown,
    value: unknown,
    event: StreamEvent<any, any>,
  ): Promise<void>
  /** The agent yielded `value` while processing `ctx.event`. */
  yielded(agent: Agent<any, any, any>, ctx: ActorContext, value: unknown): Promise<void>
  deadLetter(event: StreamEvent<any, any>, err: unknown, agent: Agent<any, any, any>): Promise<void>
  skipped(agent: Agent<any, any, any>, event: StreamEvent<any, any>, err: unknown): void
  /** Stops the worker without committing. */
  crash(err: unknown): Promise<void>
  /** Rolls back to the last commit: the app aborts this worker and starts a new one. */
  restart(err: unknown): Promise<void>
}
