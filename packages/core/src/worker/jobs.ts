/**
 * Jobs: everything a worker runs on the app clock rather than per event: `app.timer`s and
 * `app.crontab`s (on the leader only when asked), the timers that close windows, the standby
 * replicas' catch-up, and `app.task`s once the worker is ready. A failing job is logged and runs
 * again at its next time; it never stops the worker.
 */
import type { Clock } from '../base/clock.js'
import type { Logger } from '../base/logger.js'
import { parseCron, Scheduler } from '../base/schedule.js'
import { actorContext } from '../streams/context.js'
import type { Table } from '../tables/table.js'
import type { CrontabDef, TimerDef } from './host.js'

export class Jobs {
  private readonly scheduler: Scheduler
  /** Jobs running now. */
  private running = 0
  /** Jobs asked for and about to run. */
  private pending = 0
  private stopped = false

  constructor(
    clock: Clock,
    private readonly logger: Logger,
    /** True while this worker is the app's leader. */
    private readonly isLeader: () => boolean,
  ) {
    this.scheduler = new Scheduler(clock, (name, fn) => this.run(name, fn))
  }

  /** A job is running. */
  get busy(): boolean {
    return this.running > 0 || this.pending > 0
  }

  timers(timers: readonly TimerDef[]): void {
    for (const t of timers) {
      this.scheduler.every(
        t.ms,
        t.options.name ?? `timer(${t.ms}ms)`,
        this.leaderGate(t.fn, t.options.onLeader),
      )
    }
  }

  crontabs(crontabs: readonly CrontabDef[]): void {
    for (const c of crontabs) {
      const cron = parseCron(c.expr, c.options.timezone)
      this.scheduler.cron(
        cron,
        c.options.name ?? `crontab(${c.expr})`,
        this.leaderGate(c.fn, c.options.onLeader),
      )
    }
  }

  /**
   * Windows close by stream time: every windowed view (tumbling, hopping, session, sliding) has a
   * close pass that runs soon when a write moves stream time to a window's close, and on a timer
   * (for partitions gone idle, which close by the clock).
   */
  windows(tables: readonly Table<any, any>[]): void {
    for (const t of tables) {
      for (const w of t.windowViews) {
        const name = `windows(${t.name})`
        this.scheduler.every(w.closeEveryMs, name, () => w.expire())
        w.closeSoon = this.coalesced(name, () => w.expire())
      }
    }
  }

  /**
   * `fn` as a job to run soon: one run at a time, and asks made while one runs make one more run
   * after it, not one each. Stops with the jobs.
   */
  private coalesced(name: string, fn: () => unknown): () => void {
    let state: 'idle' | 'asked' | 'running' | 'again' = 'idle'
    const soon = (): void => {
      state = 'asked'
      // Counted as busy from the ask, so a test's settle() waits for it.
      this.pending++
      // Asked from inside an event (a write that moved stream time): the job is not part of that
      // event, so it runs outside its context (its sends are not the event's, nor in its transaction).
      actorContext.exit(() =>
        setImmediate(() => {
          this.pending--
          if (this.stopped) {
            state = 'idle'
            return
          }
          state = 'running'
          void this.run(name, fn).finally(() => {
            if (state === 'again') soon()
            else state = 'idle'
          })
        }),
      )
    }
    return () => {
      if (state === 'idle') soon()
      else if (state === 'running') state = 'again'
    }
  }

  every(ms: number, name: string, fn: () => unknown): void {
    this.scheduler.every(ms, name, fn)
  }

  /** Runs each task once, now. */
  tasks(tasks: readonly (() => unknown)[]): void {
    for (const task of tasks) void this.run(task.name || 'task', task)
  }

  /** No more runs (stop, abort); a run in progress finishes. */
  stop(): void {
    this.stopped = true
    this.scheduler.stop()
  }

  private leaderGate(fn: () => unknown, onLeader: boolean | undefined): () => unknown {
    return onLeader ? () => (this.isLeader() ? fn() : undefined) : fn
  }

  private async run(name: string, fn: () => unknown): Promise<void> {
    this.running++
    try {
      await fn()
    } catch (err) {
      this.logger.error(`${name} failed`, { err })
    } finally {
      this.running--
    }
  }
}
