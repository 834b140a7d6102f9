/**
 * Keeps a consumer's group session alive while it waits on the runtime (a slow batch, a revoke
 * before rejoin) by heartbeating from outside kafkajs' loop. It does not decide what to wait for.
 */
import { isRebalancing } from './kafkaErrors.js'

export class Heartbeat {
  private send: (() => Promise<void>) | undefined

  constructor(
    private readonly intervalMs: number,
    /** Resolves when the consumer is aborted: a crashed worker's handlers may never finish. */
    private readonly aborted: Promise<void>,
  ) {}

  /** kafkajs hands its heartbeat to `eachBatch` only; the first batch passes it on here. */
  capture(heartbeat: () => Promise<void>): void {
    this.send ??= heartbeat
  }

  /**
   * Awaits `work` while heartbeating every interval, so a slow handler does not cost the session.
   * Resolves early (to false) when the consumer is aborted. `onRebalance`, if given, runs when a
   * heartbeat finds the group rebalancing.
   */
  async keepAlive<T>(work: Promise<T>, onRebalance?: () => void): Promise<T | false> {
    const timer = setInterval(() => {
      this.send?.().catch((error: unknown) => {
        if (onRebalance !== undefined && isRebalancing(error)) onRebalance()
      })
    }, this.intervalMs)
    try {
      return await Promise.race([work, this.aborted.then(() => false as const)])
    } finally {
      clearInterval(timer)
    }
  }
}
