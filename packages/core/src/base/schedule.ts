import { Cron } from 'croner'
import type { Clock, TimerHandle } from './clock.js'
import { ConfigurationError } from './errors.js'

export interface TimerOptions {
  /** Run only on the leader worker (the one owning the app's leader partition). */
  onLeader?: boolean
  /** Name for logs and errors. */
  name?: string
}

/** `app.task(fn, options)` */
export interface TaskOptions {
  /** Run on the leader only, once (see App.task). */
  onLeader?: boolean
}

export interface CrontabOptions extends TimerOptions {
  /** IANA time zone of the expression. Default UTC. */
  timezone?: string
}

/** Parses a cron expression now, so a bad one fails at declaration with a clear message. */
export function parseCron(expr: string, timezone = 'UTC'): Cron {
  try {
    return new Cron(expr, { timezone, paused: true })
  } catch (cause) {
    throw new ConfigurationError(`invalid crontab ${JSON.stringify(expr)}: ${(cause as Error).message}`, {
      cause,
    })
  }
}

/**
 * Runs jobs on the app clock. Each run is awaited before the next is scheduled, so a slow job
 * never overlaps itself.
 */
export class Scheduler {
  private readonly handles = new Set<TimerHandle>()
  private stopped = false

  constructor(
    private readonly clock: Clock,
    private readonly run: (name: string, fn: () => unknown) => Promise<void>,
  ) {}

  every(ms: number, name: string, fn: () => unknown): void {
    this.after(ms, async () => {
      await this.run(name, fn)
      this.every(ms, name, fn)
    })
  }

  cron(cron: Cron, name: string, fn: () => unknown): void {
    const next = cron.nextRun(new Date(this.clock.now()))
    if (!next) return
    this.after(Math.max(0, next.getTime() - this.clock.now()), async () => {
      await this.run(name, fn)
      this.cron(cron, name, fn)
    })
  }

  private after(ms: number, fn: () => Promise<void>): void {
    if (this.stopped) return
    const h = this.clock.setTimeout(() => {
      this.handles.delete(h)
      if (!this.stopped) void fn()
    }, ms)
    this.handles.add(h)
  }

  stop(): void {
    this.stopped = true
    for (const h of this.handles) this.clock.clearTimeout(h)
    this.handles.clear()
  }
}
