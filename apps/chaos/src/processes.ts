import type { ChildProcess } from 'node:child_process'
import { execFile, spawn } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const repoDir = fileURLToPath(new URL('../../..', import.meta.url))
const kafkaLocal = join(repoDir, 'docker/kafka-local/kafka-local.sh')
const cliMain = join(repoDir, 'packages/core/src/cli/main.ts')
const run = promisify(execFile)

/** A broker for the suite: `KAFKA_BROKERS` when set, else a local one from docker/kafka-local. */
export class Broker {
  private constructor(
    readonly brokers: string,
    /** kafka-local's state directory, or undefined for a broker given by KAFKA_BROKERS. */
    readonly dir: string | undefined,
  ) {}

  static async start(): Promise<Broker> {
    const given = process.env.KAFKA_BROKERS
    if (given) return new Broker(given, process.env.MEPHISTO_KAFKA_LOCAL_DIR || undefined)
    const dir = mkdtempSync(join(tmpdir(), 'mephisto-chaos-'))
    const { stdout } = await run('bash', [kafkaLocal, 'start', '--dir', dir], { maxBuffer: 16 << 20 })
    const line = stdout.trim().split('\n').pop() ?? ''
    const brokers = /KAFKA_BROKERS=(\S+)/.exec(line)?.[1]
    if (!brokers) throw new Error(`kafka-local did not print KAFKA_BROKERS:\n${stdout}`)
    return new Broker(brokers, dir)
  }

  /** Stops the (single) node with its data kept, waits `downMs`, starts it again. */
  async bounce(downMs: number): Promise<void> {
    if (!this.dir) throw new Error('the broker-restart scenario needs a local broker (unset KAFKA_BROKERS)')
    await run('bash', [kafkaLocal, 'stop-node', '1', '--dir', this.dir])
    await sleep(downMs)
    await run('bash', [kafkaLocal, 'start-node', '1', '--dir', this.dir], { maxBuffer: 16 << 20 })
  }

  /** A topic's dynamic config value `name`, read with Kafka's own `kafka-configs` tool. */
  async topicConfig(topic: string, name: string): Promise<string | undefined> {
    const { stdout } = await this.configCommand(topic, '--describe')
    return new RegExp(`^\\s*${name.replaceAll('.', '\\.')}=(\\S*)`, 'm').exec(stdout)?.[1]
  }

  /** Sets a topic's config `name` to `value` on the running cluster (as `kafka-configs --alter`). */
  async setTopicConfig(topic: string, name: string, value: string): Promise<void> {
    await this.configCommand(topic, '--alter', '--add-config', `${name}=${value}`)
  }

  private configCommand(topic: string, ...args: string[]): Promise<{ stdout: string }> {
    if (!this.dir) throw new Error('changing a topic config needs a local broker (unset KAFKA_BROKERS)')
    return run(
      'bash',
      [
        kafkaLocal,
        'run-class',
        '--dir',
        this.dir,
        'kafka.admin.ConfigCommand',
        '--bootstrap-server',
        this.brokers.split(',')[0]!,
        '--entity-type',
        'topics',
        '--entity-name',
        topic,
        ...args,
      ],
      { maxBuffer: 16 << 20 },
    )
  }

  async stop(): Promise<void> {
    if (this.dir && !process.env.KAFKA_BROKERS) await run('bash', [kafkaLocal, 'stop', '--dir', this.dir])
  }
}

/**
 * What `hungAgentApp.ts` logs when the actor of a timed-out event wakes and tries a table write:
 * refused with EVENT_TIMEOUT as it must be, or not (accepted, or refused for another reason).
 */
export const LATE_WRITE_REFUSED =
  'chaos: a late table write of a timed-out event was refused with EVENT_TIMEOUT'
export const LATE_WRITE_NOT_REFUSED =
  'chaos: a late table write of a timed-out event was NOT refused with EVENT_TIMEOUT'

export interface WorkerSpec {
  /** The module holding the app (default: the hit counter). */
  module?: string
  env: Record<string, string>
}

/**
 * A `mephisto worker` process of the hit counter, restarted by hand after each kill: a
 * supervisor in miniature. Keeps how long each start took and whether a process died on its own.
 */
export class WorkerProcess {
  private child: ChildProcess | undefined
  private exited: Promise<number | null> | undefined
  /** Exits that the suite did not cause (a crash). */
  unexpectedExits = 0
  /**
   * In-process restarts (a worker rolled back and replaced inside the process), counted from the
   * log over the whole life of this process and its successors: the kept log is only a tail.
   */
  restarts = 0
  /**
   * Dead-letter writes the broker refused as larger than the topic's `max.message.bytes`
   * (MESSAGE_TOO_LARGE), counted from Mephisto's own line for each failed attempt or failed
   * transaction (the same whatever the Kafka client). They show that a fault really failed sends.
   */
  tooLargeErrors = 0
  /** Late table writes of a timed-out event, refused or not (see LATE_WRITE_REFUSED). */
  lateWritesRefused = 0
  lateWritesNotRefused = 0
  private partialLine = ''
  private expectingExit = false
  /** Stopped by the suite (kill): the supervisor leaves it down until the suite starts it. */
  private held = false
  log = ''

  constructor(
    readonly name: string,
    private readonly spec: WorkerSpec,
  ) {}

  get running(): boolean {
    return this.child !== undefined
  }

  /** Starts the process; resolves with the time until it printed `ready:` (recovery included). */
  async start(timeoutMs = 90_000): Promise<number> {
    const started = Date.now()
    const module = this.spec.module ?? join(repoDir, 'apps/hit-counter-worker/src/app.ts')
    const child = spawn(
      process.execPath,
      [
        '--conditions=@mephisto/source',
        '--import',
        'tsx',
        cliMain,
        '-A',
        module,
        'worker',
        '-l',
        process.env.CHAOS_WORKER_LOG ?? 'warn',
        '--without-web',
      ],
      {
        cwd: repoDir,
        // The instance id names the worker across its restarts: a client with static membership
        // (MEPHISTO_TRANSPORT=platformatic) takes a killed worker's place at once.
        env: {
          ...process.env,
          NO_COLOR: '1',
          MEPHISTO_STORE: 'memory',
          MEPHISTO_INSTANCE_ID: `chaos-${this.name.replace(/[^\w.-]/g, '-')}`,
          ...this.spec.env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    this.child = child
    this.expectingExit = false
    this.held = false
    this.note(`started pid ${child.pid}`)
    let out = ''
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Not ready in time: end it, or it would linger as a member of the group.
        this.expectingExit = true
        child.kill('SIGKILL')
        reject(new Error(`${this.name}: not ready after ${timeoutMs} ms; killed`))
      }, timeoutMs)
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d
        if (/^ready: /m.test(out)) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`${this.name} exited with ${code} before it was ready:\n${this.log.slice(-3000)}`))
      })
    })
    this.partialLine = ''
    // The kept log is a tail; CHAOS_WORKER_LOG_DIR keeps all of it, one file per worker.
    const logDir = process.env.CHAOS_WORKER_LOG_DIR
    const logFile = logDir ? join(logDir, `${this.name.replaceAll('/', '_')}.log`) : undefined
    if (logDir) mkdirSync(logDir, { recursive: true })
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.log = (this.log + d).slice(-20_000)
      this.countLines(d)
      if (logFile) appendFileSync(logFile, d)
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (!this.expectingExit) this.unexpectedExits++
        if (this.child === child) this.child = undefined
        this.note(`pid ${child.pid} exited (${signal ?? code})`)
        resolve(code)
      })
    })
    await ready
    return Date.now() - started
  }

  /**
   * Sends `signal` and waits for the process to end. One that is still there `timeoutMs` later
   * is killed (SIGKILL) and counted in `stuckStops`, and a SIGTERM that ends it with a code other
   * than 0 in `uncleanStops`: a worker must stop cleanly, and never hang on a stop (its own
   * --stop-timeout, 60 s here, ends it first).
   */
  async kill(signal: NodeJS.Signals, timeoutMs = 90_000): Promise<number | null> {
    const child = this.child
    if (!child) return null
    this.expectingExit = true
    this.held = true
    child.kill(signal)
    const exited = this.exited!
    try {
      const code = await bounded(`${this.name} after ${signal}`, timeoutMs, exited)
      if (signal === 'SIGTERM' && code !== 0) this.uncleanStops++
      return code
    } catch {
      // Still running: killed below.
    }
    this.stuckStops++
    this.note(`still running ${timeoutMs} ms after ${signal}; SIGKILL`)
    child.kill('SIGKILL')
    await exited
    return null
  }

  /** Counts the log lines the suite reports on (see `restarts`, `tooLargeErrors`, `lateWritesRefused`). */
  private countLines(chunk: string): void {
    const lines = (this.partialLine + chunk).split('\n')
    this.partialLine = lines.pop() ?? ''
    for (const line of lines) {
      if (/starting a new worker \(restart \d+/.test(line)) this.restarts++
      // Mephisto's own lines, whatever the Kafka client: each failed write of a dead letter, or
      // (exactly-once, where dead letters go with the transaction) each transaction that failed.
      if (
        /writing a dead letter to \S+ failed; trying again|a transaction failed/.test(line) &&
        /too large|TOO_LARGE|larger than/i.test(line)
      )
        this.tooLargeErrors++
      if (line.includes(LATE_WRITE_REFUSED)) this.lateWritesRefused++
      if (line.includes(LATE_WRITE_NOT_REFUSED)) this.lateWritesNotRefused++
    }
  }

  /** Adds a line of the suite's own to the log kept of the process. */
  private note(what: string): void {
    this.log = `${this.log}--- ${this.name}: ${what} at ${new Date().toISOString()}\n`.slice(-20_000)
  }

  /** Stops (SIGTERM) that did not end the process within their time, so it was killed. */
  stuckStops = 0
  /** SIGTERMs after which the process exited with a code other than 0. */
  uncleanStops = 0

  /** Restarts the process after it died on its own (a crash), as a supervisor would. */
  async superviseUntil(done: () => boolean): Promise<void> {
    while (!done()) {
      if (!this.child && !this.held) {
        await sleep(500)
        await this.start().catch(() => {})
      }
      await sleep(200)
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Resolves or rejects as `p` does, or rejects once `ms` have passed. */
export function bounded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: still not done after ${(ms / 1000).toFixed(0)} s`)),
      ms,
    )
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}
