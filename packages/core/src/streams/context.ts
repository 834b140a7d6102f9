import { AsyncLocalStorage } from 'node:async_hooks'
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
}

export const actorContext: AsyncLocalStorage<ActorContext> = new AsyncLocalStorage<ActorContext>()

/** The event the calling code is processing, if any. */
export function currentEvent(): StreamEvent<unknown, unknown> | undefined {
  return actorContext.getStore()?.event
}
