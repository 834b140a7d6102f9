import { hostname } from 'node:os'
import type { App } from '../app/app.js'
import { DEFAULTS } from '../app/options.js'
import type { WebOptions } from '../web/page.js'
import type { ParsedArgs, WorkerCount } from './args.js'
import { intOption, stringOption } from './args.js'
import type { CommandContext } from './context.js'
import { brokerName, describeAgents, describeTables, describeTopics, storeName } from './describe.js'
import { EXIT, UsageError } from './exitCodes.js'
import { failureLine } from './failure.js'
import { agentsTable, tablesTable, topicsTable } from './listCommands.js'
import { onSupervisorGone, poolMember, reportReady, scopeStores, storeScope } from './poolMember.js'
import type { PoolPlan } from './poolPlan.js'
import { planPool, poolWebDescription } from './poolPlan.js'
import { renderBox } from './render.js'
import { cliVersion } from './version.js'
import { runWorkerPool } from './workerPool.js'

const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGTERM: 15 }

/**
 * The web options the worker's flags and environment ask for, or undefined to keep the app's:
 * `--web-host`, `--web-port`, `MEPHISTO_WEB_TOKEN` (the bearer token; empty counts as unset) and
 * `MEPHISTO_WEB_ALLOWED_HOSTS` (host names, comma-separated). `--without-web` wins over all.
 */
export function webOverrides(
  argv: ParsedArgs,
  env: NodeJS.ProcessEnv = process.env,
): false | WebOptions | undefined {
  if (argv.options['without-web']) return false
  const host = stringOption(argv.options, 'web-host')
  const port =
    argv.options['web-port'] === undefined
      ? undefined
      : intOption(argv.options, 'web-port', DEFAULTS.webPort, 'worker')
  const token = env.MEPHISTO_WEB_TOKEN?.trim() || undefined
  const allowedHosts = (env.MEPHISTO_WEB_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  if (host === undefined && port === undefined && token === undefined && allowedHosts.length === 0)
    return undefined
  if (port !== undefined && port > 65535)
    throw new UsageError(`--web-port must be 0 to 65535 (got ${port})`, 'worker')
  return {
    ...(host !== undefined && { host }),
    ...(port !== undefined && { port }),
    ...(token !== undefined && { token }),
    ...(allowedHosts.length > 0 && { allowedHosts }),
  }
}

/**
 * `mephisto worker`: prints the banner, starts the app and runs until a signal. The first
 * SIGTERM/SIGINT stops it cleanly (stop fetching, drain, flush, commit) and resolves with 0; a
 * second one exits at once. A worker that crashes (an agent with onError 'crash', a failed
 * commit it cannot survive) resolves with 1. With `--workers N` (N > 1) this process only
 * supervises N workers (workerPool.ts); `argv` is the command line they are started with.
 */
export async function workerCommand(
  ctx: CommandContext,
  workers: WorkerCount = { count: 1, auto: false },
  argv: readonly string[] = [],
): Promise<number> {
  const { app, logger, output } = ctx
  // Checked before the worker starts: a bad value is a usage error, not a surprise at the stop.
  const stopTimeoutS = intOption(
    ctx.argv.options,
    'stop-timeout',
    Math.ceil(app.settings.drainTimeoutMs / 1000) + 30,
    'worker',
  )
  if (workers.count > 1) {
    const plan = await planPool(ctx, workers, stopTimeoutS, argv)
    output.out(banner(ctx, plan))
    return runWorkerPool(ctx, plan)
  }
  // A worker of a pool: the supervisor printed the banner; this one keeps a store directory of
  // its own and reports to the supervisor.
  const member = poolMember()
  if (member) scopeStores(app, member.index)
  else output.out(banner(ctx))
  const started = Date.now()

  let stopRequested: string | undefined
  let finish!: (code: number) => void
  const done = new Promise<number>((resolve) => (finish = resolve))
  let starting = true

  // A stop is bounded from the first signal on, also one that arrives while the worker is still
  // starting (a broker that went away mid-start): it logs what it waits for every 10 s (the worker
  // names its stop phase) and gives up at --stop-timeout. What was not committed is processed
  // again by the next worker, as after a second signal.
  const bound = (): void => {
    const began = Date.now()
    const phase = (): string => (starting ? 'starting' : (app.worker?.stopPhase ?? 'stopping'))
    const progress = setInterval(() => {
      logger.warn(`still stopping after ${Math.round((Date.now() - began) / 1000)} s: ${phase()}`)
    }, 10_000)
    progress.unref?.()
    const deadline =
      stopTimeoutS > 0
        ? setTimeout(() => {
            logger.error(
              `the stop did not finish within --stop-timeout ${stopTimeoutS} s (still ${phase()}); ` +
                'exiting without it: what was not committed is processed again by the next worker',
            )
            finish(EXIT.failure)
          }, stopTimeoutS * 1000)
        : undefined
    void done.finally(() => {
      clearInterval(progress)
      clearTimeout(deadline)
    })
  }
  const stop = (signal: string): void => {
    logger.info(`${signal}: stopping (stop fetching, drain, flush, commit); send it again to exit at once`)
    app.stop().then(
      () => {
        output.out(member ? `stopped (${signal})` : `stopped: ${app.id} (${signal})`)
        finish(EXIT.ok)
      },
      (err: unknown) => {
        logger.error('stop failed: offsets after the last successful commit will be processed again', {
          err,
        })
        finish(EXIT.failure)
      },
    )
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested !== undefined) {
      // The user asked twice: leave now. Nothing more is committed; the next worker reprocesses.
      logger.warn(`${signal} again: exiting at once without committing`)
      logger.flush()
      process.exit(128 + (SIGNAL_NUMBERS[signal] ?? 1))
    }
    stopRequested = signal
    bound()
    // A signal during start-up is honoured once start() settles: stopping a half-started
    // worker from here would race its start.
    if (!starting) stop(signal)
    else logger.info(`${signal}: stopping as soon as the worker has started; send it again to exit at once`)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  if (member) {
    onSupervisorGone(() => {
      if (stopRequested !== undefined) return
      logger.warn('the supervisor is gone: stopping')
      onSignal('SIGTERM')
    })
  }

  const started$ = app.start().then(
    () => true,
    (err: unknown) => {
      // One line that says why; the stack (and the cause chain that repeats it) only at debug.
      logger.error(`worker failed to start: ${failureLine(err)}`)
      logger.debug('worker failed to start', { err })
      return false
    },
  )
  // The stop deadline may end the command while start() is still under way.
  const ok = await Promise.race([started$, done.then(() => undefined)])
  if (ok === undefined) return done
  if (!ok) {
    starting = false
    return EXIT.failure
  }
  starting = false
  const web = app.webUrl
  const took = ((Date.now() - started) / 1000).toFixed(2)
  if (member) {
    // Marked [w<i>] by the supervisor; not 'ready:', which the supervisor prints once all are.
    output.out(`ready in ${took} s (pid ${process.pid})${web ? `, web ${web}/` : ''}`)
    reportReady(web)
  } else output.out(`ready: ${app.id} in ${took} s${web ? `, web ${web}/` : ''}`)
  if (stopRequested !== undefined) stop(stopRequested)

  // The worker has no crash event: watch its state, and exit non-zero when it dies on its own
  // (otherwise the process would idle on, or exit 0 once its last handle closed).
  const watch = setInterval(() => {
    const worker = app.worker
    if (worker?.state === 'crashed' && !app.restarting && stopRequested === undefined) {
      logger.error('worker crashed: exiting; what was not committed is processed again by the next worker', {
        err: worker.crashReason,
      })
      finish(EXIT.failure)
    }
  }, 200)
  try {
    return await done
  } finally {
    clearInterval(watch)
  }
}

/**
 * Faust's start-up banner: who, where, and the tables of topics, agents and tables. With a
 * pool's plan, it also says how many workers run, on which ports, and where their state goes.
 */
export function banner(ctx: CommandContext, pool?: PoolPlan): string {
  const { app, loaded, logger } = ctx
  const head = renderBox(`mephisto v${cliVersion()}`, [
    ['id', app.id],
    ['broker', brokerName(app)],
    ['store', pool ? poolStoreDescription(app, pool) : storeName(app.settings.store)],
    ['web', pool ? poolWebDescription(pool) : webDescription(app)],
    ...(pool ? [['workers', workersDescription(pool)] as const] : []),
    ['log', `stderr (${logger.pino.level}${logger.pretty ? ', pretty' : ', json'})`],
    ['app', `${loaded.path}${loaded.exportName === 'default' ? '' : `:${loaded.exportName}`}`],
    ['guarantee', app.settings.processingGuarantee],
    ['pid', pool ? `${process.pid} (the supervisor)` : String(process.pid)],
    ['hostname', hostname()],
    ['platform', `Node.js ${process.version} (${process.platform} ${process.arch})`],
  ])
  return [
    head,
    topicsTable(describeTopics(app)),
    agentsTable(describeAgents(app)),
    tablesTable(describeTables(app)),
  ].join('\n')
}

function workersDescription(pool: PoolPlan): string {
  const { count, auto } = pool.workers
  return `${count} processes${auto ? ' (auto: one per core)' : ''}, restarted when they die`
}

/** The store row of a pool: on disk, each worker has a directory of its own. */
function poolStoreDescription(app: App, pool: PoolPlan): string {
  const name = storeName(app.settings.store)
  if (name === 'memory://') return name
  const last = pool.workers.count - 1
  return `${name} (per worker: ${storeScope(app.id, 0)}, ${storeScope(app.id, 1)}${last > 1 ? ` ... ${storeScope(app.id, last)}` : ''})`
}

function webDescription(app: App): string {
  const web = app.settings.web
  if (web === false) return 'off'
  const host = web?.host ?? DEFAULTS.webHost
  const port = web?.port ?? DEFAULTS.webPort
  return port === 0 ? `http://${host}:<free port>/ (printed when ready)` : `http://${host}:${port}/`
}
