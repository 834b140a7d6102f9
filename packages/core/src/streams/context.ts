import { AsyncLocalStorage } from 'node:async_hooks'
import { MephistoError } from '../base/errors.js'
import type { StreamEventInfo } from '../sensors/sensor.js'
import type { StreamEvent } from './event.js'

/**
 * What an actor is doing right now. One per actor, set once with `AsyncLocalStorage.run` when
 * the actor starts; the stream updates `event` as it hands out events. Because the holder is
 * mutable and per actor, the current event survives every `await` in the agent body and
 * concurrent actors never see each other's events, at the cost of one `run` per actor rather
 * than one per event.
 */
export interface ActorContext {
  /** The event being processed (for `take`, the last of the batch). */
  event: StreamEvent<any, any> | undefined
  /** Events handed out and not yet acked by the stream (more than one inside `take`). */
  held: StreamEvent<any, any>[]
  /** The agent's name, for errors and sensors. */
  readonly agent: string
  /**
   * Set while `take()` holds a partial batch: hands it over now. A rebalance or stop calls it,
   * since it waits for those events and the batch's own timeout may be far off (or, on a fake
   * clock, never come).
   */
  flush?: (() => void) | undefined
  /**
   * Set when the actor's event ran past its agent's `eventTimeoutMs`: another actor took over,
   * and this one's stream ends, its sends and table writes are refused.
   */
  abandoned?: boolean
}

export const actorContext: AsyncLocalStorage<ActorContext> = new AsyncLocalStorage<ActorContext>()

/** The event the calling code is processing, if any. */
export function currentEvent(): StreamEvent<unknown, unknown> | undefined {
  return actorContext.getStore()?.event
}

/**
 * For sensors: the event the calling code is handling, as the sensors' `onStreamEventIn` was given
 * it (the event as delivered, before any `map`), so a sensor finds the state it keeps for it; in a
 * `take()` batch, the batch's last event. Undefined outside an agent, and for an event no stream
 * has handed to the agent's code (the forwarding half of `groupBy`/`through`). Call it from a hook
 * that runs in the sender's context, such as `onSendInitiated`, to tell an agent's send from others.
 */
export function currentStreamEventInfo(): StreamEventInfo | undefined {
  const root = actorContext.getStore()?.event?.root
  // `stream` is set when a stream hands the event to the agent's code (and the sensors see it).
  return root?.stream === undefined ? undefined : (root as StreamEventInfo)
}

/**
 * Throws when called from an actor abandoned after its event's timeout: what it would write or
 * send now would land after its event was already settled (dead-lettered, skipped or retried).
 */
export function refuseIfAbandoned(what: string): void {
  const context = actorContext.getStore()
  if (context?.abandoned) {
    throw new MephistoError(
      'EVENT_TIMEOUT',
      `${what} refused: agent ${context.agent} ran past its eventTimeoutMs on this event, which was settled without it`,
    )
  }
}
