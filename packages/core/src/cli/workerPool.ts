/**
 * `mephisto worker --workers N`: a supervisor that runs N worker processes of the app from one
 * command, all in the app's consumer group. Each is the same CLI `worker` command marked with its
 * index (MEPHISTO_WORKER_INDEX, MEPHISTO_WORKERS) on a web port of its own. The supervisor marks
 * their output with `[w<i>]`, restarts a worker that dies (with a backoff; a crash loop stops them
 * all) and passes SIGTERM/SIGINT on. It starts no App and knows nothing of partitions: the
 * consumer group splits the work, and what a worker does differently is in poolMember.ts.
 */
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import type { CommandContext } from './context.js'
import { onMemoryBroker } from './context.js'
import { CliFailure, EXIT } from './exitCodes.js'
import { forwardLines, workerMark } from './lineForwarder.js'
import { isReadyMessage, POOL_ENV } from './poolMember.js'
import type { PoolPlan } from './poolPlan.js'

/** When a worker that dies is restarted, and when the pool gives up on it. */
export const RESTARTS = {
  /** More deaths of one worker than this within `windowMs` stop the whole pool (exit 1). */
  maxDeaths: 5,
  windowMs: 60_000,
  /** The first restart waits this long; each further death within the window doubles it. */
  firstDelayMs: 250,
  maxDelayMs: 10_000,
} as const

/** How long past --stop-timeout the supervisor waits for workers that bound their own stop. */
const STOP_GRACE_MS = 5_000
/** How long killed workers get to be reaped before the supervisor exits anyway. */
const KILL_WAIT_MS = 3_000
const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 }

/** Runs the pool until a signal stops it, or a worker crash-loops; resolves with the exit code. */
export function runWorkerPool(
  ctx: CommandContext,
  plan: PoolPlan,
  entry: string | undefined = process.argv[1],
): Promise<number> {
  if (!entry) throw new CliFailure('cannot start the workers: the path of the mephisto command is unknown')
  if (onMemoryBroker(ctx.app)) {
    ctx.logger.warn(
      `memory:// lives inside one process: each of the ${plan.workers.count} workers has a broker of its own and ` +
        'they share no work; point them at Kafka (--broker) to split the partitions',
    )
  }
  return new WorkerPool(ctx, plan, entry).run()
}

interface Slot {
  index: number
  port: number | undefined
  child: ChildProcess | undefined
  web: string | undefined
  ready: boolean
  /** When this worker died unexpectedly, within the restart window. */
  deaths: number[]
  restart: NodeJS.Timeout | undefined
  /** How its last process ended. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
}

class WorkerPool {
  private readonly slots: Slot[]
  private readonly began = Date.now()
  /** The signal (or reason) the pool is stopping for. */
  private stopping: string | undefined
  /** Set when the pool stops because of a failure: it exits 1 whatever the workers do. */
  private failed = false
  /** Set on a second signal: the exit code once the killed workers are reaped. */
  private killedCode: number | undefined
  private announced = false
  private settled = false
  private finish!: (code: number) => void
  private readonly done = new Promise<number>((resolve) => (this.finish = resolve))
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor(
    private readonly ctx: CommandContext,
    private readonly plan: PoolPlan,
    private readonly entry: string,
  ) {
    this.slots = Array.from({ length: plan.workers.count }, (_, index) => ({
      index,
      port: plan.ports?.[index],
      child: undefined,
      web: undefined,
      ready: false,
      deaths: [],
      restart: undefined,
      exit: undefined,
    }))
  }

  async run(): Promise<number> {
    process.on('SIGTERM', this.onSignal)
    process.on('SIGINT', this.onSignal)
    try {
      for (const slot of this.slots) this.spawn(slot)
      return await this.done
    } finally {
      process.off('SIGTERM', this.onSignal)
      process.off('SIGINT', this.onSignal)
      for (const timer of this.timers) clearTimeout(timer)
      for (const slot of this.slots) clearTimeout(slot.restart)
    }
  }

  private spawn(slot: Slot): void {
    const { plan, ctx } = this
    const args = [
      ...nodeFlags(process.execArgv),
      this.entry,
      ...plan.argv,
      // Later options win: the worker runs alone, in the supervisor's log format, on its port.
      '--workers',
      '1',
      '--log-format',
      plan.logFormat,
      ...(slot.port === undefined ? [] : ['--web-port', String(slot.port)]),
    ]
    // Its own process group: a Ctrl-C on the terminal reaches the supervisor alone, which passes
    // it on once (a worker that got it twice would exit without committing).
    const child = spawn(process.execPath, args, {
      env: {
        ...process.env,
        [POOL_ENV.index]: String(slot.index),
        [POOL_ENV.workers]: String(plan.workers.count),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    })
    slot.child = child
    slot.ready = false
    slot.web = undefined
    const mark = workerMark(slot.index)
    forwardLines(child.stdout!, (line) => ctx.output.out(mark + line))
    // JSON log lines stay JSON for log collectors: the worker's logger puts its index in them.
    forwardLines(child.stderr!, (line) =>
      ctx.output.err(plan.logFormat === 'json' && line.startsWith('{') ? line : mark + line),
    )
    child.on('message', (message) => {
      if (isReadyMessage(message)) this.onReady(slot, message.web)
    })
    let ended = false
    const end = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (ended) return
      ended = true
      this.onEnd(slot, child, code, signal)
    }
    child.on('error', (err) => {
      ctx.logger.error(`worker ${slot.index}: ${err.message}`, { err })
      if (child.pid === undefined) end(null, null)
    })
    child.on('close', end)
    if (child.pid !== undefined) ctx.logger.info(`worker ${slot.index} started (pid ${child.pid})`)
  }

  private onReady(slot: Slot, web: string | undefined): void {
    slot.ready = true
    slot.web = web
    if (this.announced && this.stopping === undefined)
      this.ctx.logger.info(`worker ${slot.index} is processing again (pid ${slot.child?.pid})`)
    if (this.announced || this.stopping !== undefined || !this.slots.every((s) => s.ready)) return
    this.announced = true
    const webs = this.slots.filter((s) => s.web).map((s) => `${s.web}/ (w${s.index})`)
    const took = ((Date.now() - this.began) / 1000).toFixed(2)
    this.ctx.output.out(
      `ready: ${this.ctx.app.id} in ${took} s${webs.length ? `, web ${webs.join(', ')}` : ''}`,
    )
  }

  private onEnd(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return
    slot.child = undefined
    slot.ready = false
    slot.exit = { code, signal }
    if (this.stopping !== undefined) {
      this.settle()
      return
    }
    const { logger } = this.ctx
    const now = Date.now()
    slot.deaths = [...slot.deaths.filter((t) => now - t < RESTARTS.windowMs), now]
    const who = `worker ${slot.index} (pid ${child.pid ?? 'none'})`
    const how = describeExit(code, signal)
    if (code === EXIT.usage) {
      logger.error(
        `${who} exited with a usage error (${how}), which a restart cannot fix: stopping all workers`,
      )
      this.fail()
      return
    }
    if (slot.deaths.length > RESTARTS.maxDeaths) {
      logger.error(
        `${who} died ${slot.deaths.length} times within ${RESTARTS.windowMs / 1000} s (last: ${how}): ` +
          'stopping all workers',
      )
      this.fail()
      return
    }
    const delay = Math.min(RESTARTS.firstDelayMs * 2 ** (slot.deaths.length - 1), RESTARTS.maxDelayMs)
    logger.error(
      `${who} died: ${how}; restarting it in ${delay} ms ` +
        `(death ${slot.deaths.length} of ${RESTARTS.maxDeaths} allowed within ${RESTARTS.windowMs / 1000} s)`,
    )
    slot.restart = setTimeout(() => {
      slot.restart = undefined
      if (this.stopping === undefined) this.spawn(slot)
    }, delay)
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    if (this.stopping === undefined) {
      this.ctx.logger.info(
        `${signal}: stopping the ${this.slots.length} workers (each stops fetching, drains, flushes, commits); ` +
          'send it again to kill them at once',
      )
      this.stop(signal)
      return
    }
    if (this.killedCode !== undefined) return
    this.ctx.logger.warn(`${signal} again: killing the workers at once, without committing`)
    this.kill(128 + (SIGNAL_NUMBERS[signal] ?? 1))
  }

  private fail(): void {
    this.failed = true
    this.stop('SIGTERM')
  }

  /** Passes the signal to every running worker and waits for them, bounded by --stop-timeout. */
  private stop(signal: NodeJS.Signals): void {
    this.stopping = signal
    for (const slot of this.slots) {
      clearTimeout(slot.restart)
      slot.restart = undefined
      slot.child?.kill(signal)
    }
    const began = Date.now()
    const progress = setInterval(() => {
      this.ctx.logger.warn(
        `still stopping after ${Math.round((Date.now() - began) / 1000)} s: waiting for ${this.running()}`,
      )
    }, 10_000)
    progress.unref?.()
    void this.done.finally(() => clearInterval(progress))
    // Each worker bounds its own stop at --stop-timeout and exits 1; this is for one that cannot.
    if (this.plan.stopTimeoutS > 0) {
      this.later(this.plan.stopTimeoutS * 1000 + STOP_GRACE_MS, () => {
        this.ctx.logger.error(
          `${this.running()} did not stop within --stop-timeout ${this.plan.stopTimeoutS} s: killing them`,
        )
        this.failed = true
        this.kill(EXIT.failure)
      })
    }
    this.settle()
  }

  /** SIGKILL to every running worker; exits with `code` once they are reaped (or soon anyway). */
  private kill(code: number): void {
    this.killedCode = code
    for (const slot of this.slots) slot.child?.kill('SIGKILL')
    this.later(KILL_WAIT_MS, () => this.end(code))
    this.settle()
  }

  /** Ends the pool once no worker runs: 0 when every worker stopped cleanly, else 1. */
  private settle(): void {
    if (this.slots.some((s) => s.child !== undefined)) return
    if (this.killedCode !== undefined) {
      this.end(this.killedCode)
      return
    }
    const clean = !this.failed && this.slots.every((s) => s.exit?.code === 0)
    if (clean) this.ctx.output.out(`stopped: ${this.ctx.app.id} (${this.stopping})`)
    else if (!this.failed) {
      const unclean = this.slots.filter((s) => s.exit?.code !== 0)
      this.ctx.logger.error(
        `not every worker stopped cleanly: ${unclean.map((s) => `worker ${s.index} ${describeExit(s.exit?.code ?? null, s.exit?.signal ?? null)}`).join(', ')}`,
      )
    }
    this.end(clean ? EXIT.ok : EXIT.failure)
  }

  private end(code: number): void {
    if (this.settled) return
    this.settled = true
    this.finish(code)
  }

  private running(): string {
    const pids = this.slots.filter((s) => s.child).map((s) => `worker ${s.index} (pid ${s.child?.pid})`)
    return pids.join(', ') || 'no worker'
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(fn, ms)
    this.timers.add(timer)
  }
}

/** `exit code 1`, `killed by SIGKILL`. */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`
  return code === null ? 'could not be started' : `exit code ${code}`
}

/**
 * The supervisor's Node flags for its workers (`--conditions=@mephisto/source --import tsx` in the
 * workspace, none for the built bin), without the inspector's: N workers cannot share its port.
 */
function nodeFlags(execArgv: readonly string[]): string[] {
  return execArgv.filter((flag) => !/^--inspect(?:-brk|-port|-wait)?(?:=|$)/.test(flag))
}
