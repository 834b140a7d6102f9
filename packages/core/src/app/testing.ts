/**
 * The seam a test harness (the testkit) or a tool uses to watch and drive a running app: whether
 * its worker is idle, a commit now, a crash on demand, why it crashed. Experimental: it may change
 * in a minor version, which is why it is reached as `app.experimental_testing`.
 */

import type { WorkerState } from '../worker/state.js'
import type { Worker } from '../worker/worker.js'

export interface AppTestingSeam {
  /** The current worker's state; undefined before the first start. */
  readonly state: WorkerState | undefined
  /** The error that crashed the current worker, if one did. */
  readonly crashReason: unknown
  /** Nothing queued, in progress, being committed or being run by a timer (true when no worker runs). */
  idle(): boolean
  /** Flushes and commits now, as the commit interval would. */
  commit(): Promise<void>
  /** Stops at once without flushing or committing, as a crash would; no restart follows. */
  abort(reason?: unknown): Promise<void>
}

/** What the seam reads of the app. */
export interface TestableApp {
  readonly worker: Worker | undefined
  abort(reason?: unknown): Promise<void>
}

/** The seam over `app`, reading its current worker at each call (a restart makes a new one). */
export function testingSeam(app: TestableApp): AppTestingSeam {
  return {
    get state() {
      return app.worker?.state
    },
    get crashReason() {
      return app.worker?.crashReason
    },
    idle: () => {
      const w = app.worker
      return !w || w.state === 'stopped' || w.state === 'crashed' || w.idle()
    },
    commit: async () => {
      await app.worker?.commit()
    },
    abort: (reason) => app.abort(reason),
  }
}
