/**
 * Which partitions of a table are being recovered right now, so a read from outside any event (a
 * page, a timer, a test) waits for the partition's recovery instead of answering the default of
 * a value that is still on its way. Recovery itself is TableState's.
 */

import type { Deferred } from '../base/deferred.js'
import { deferred } from '../base/deferred.js'
import { NotReadyError } from '../base/errors.js'

export class RecoveringPartitions {
  private readonly pending = new Map<number, Deferred<void>>()

  constructor(private readonly table: string) {}

  /** Recovery of `partition` starts. */
  begin(partition: number): void {
    if (this.pending.has(partition)) return
    const d = deferred<void>()
    // A failed recovery with no reader waiting is not an unhandled rejection: the worker reports it.
    d.promise.catch(() => {})
    this.pending.set(partition, d)
  }

  /** Recovery of `partition` ended (failed, with `error`). */
  end(partition: number, error?: unknown): void {
    const d = this.pending.get(partition)
    if (!d) return
    this.pending.delete(partition)
    if (error === undefined) d.resolve()
    else
      d.reject(
        new NotReadyError(`table ${this.table}: partition ${partition} failed to recover`, { cause: error }),
      )
  }

  /** True while `partition` is recovering (cheap: what every read checks first). */
  has(partition: number): boolean {
    return this.pending.size > 0 && this.pending.has(partition)
  }

  /** Resolves once `partition` has recovered (at once if it is not recovering); rejects with NotReadyError after `timeoutMs`. */
  async wait(partition: number, timeoutMs: number): Promise<void> {
    const d = this.pending.get(partition)
    if (!d) return
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new NotReadyError(
              `table ${this.table}: partition ${partition} is still recovering after ${timeoutMs} ms; try again`,
            ),
          ),
        timeoutMs,
      )
    })
    try {
      await Promise.race([d.promise, timedOut])
    } finally {
      clearTimeout(timer)
    }
  }
}
