/**
 * The lifecycle state of a worker, as every room of the engine reads it. Only the worker changes
 * it; the rooms check it before they send, flush or commit.
 */

export type WorkerState = 'starting' | 'running' | 'stopping' | 'stopped' | 'crashed'

/** A read-only view of the worker's state. */
export interface WorkerStatus {
  readonly state: WorkerState
  /** Crashed or stopped: nothing may be sent, flushed or committed any more. */
  readonly dead: boolean
}
