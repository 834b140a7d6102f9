/**
 * What `mephisto worker --workers N` will run, decided before any worker starts: how many, each
 * one's web port, the log format and the stop bound. It checks the ports up front, so a taken
 * one is one clear error rather than a worker that crash-loops on it. Running the pool is
 * workerPool.ts's job.
 */
import { createServer } from 'node:net'
import { DEFAULTS } from '../app/options.js'
import type { WorkerCount } from './args.js'
import type { CommandContext } from './context.js'
import { CliFailure, UsageError } from './exitCodes.js'

/** What the pool runs: decided, and checked, before any worker starts. */
export interface PoolPlan {
  workers: WorkerCount
  /** Each worker's web port (0: each picks a free one), or undefined when they serve no web. */
  ports: number[] | undefined
  host: string
  stopTimeoutS: number
  /** The command line as given (without node and the script). */
  argv: readonly string[]
  /** The log format the workers use: the supervisor's, since their stderr is never a terminal. */
  logFormat: 'pretty' | 'json'
}

/**
 * Decides each worker's web port: the first on the app's port (`--web-port`, default 6066), the
 * others on the ports after it, or all on 0 (each picks a free one). Fails before anything starts
 * when a port is out of range (usage error) or taken (failure), rather than letting a worker
 * crash-loop on it.
 */
export async function planPool(
  ctx: CommandContext,
  workers: WorkerCount,
  stopTimeoutS: number,
  argv: readonly string[],
): Promise<PoolPlan> {
  const web = ctx.app.settings.web
  const host = (web === false ? undefined : web?.host) ?? DEFAULTS.webHost
  const plan = {
    workers,
    host,
    stopTimeoutS,
    argv,
    logFormat: ctx.logger.pretty ? 'pretty' : 'json',
  } as const
  if (web === false) return { ...plan, ports: undefined }
  const base = web?.port ?? DEFAULTS.webPort
  const ports = Array.from({ length: workers.count }, (_, i) => (base === 0 ? 0 : base + i))
  const last = ports[ports.length - 1] ?? 0
  if (last > 65535) {
    throw new UsageError(
      `--workers ${workers.count} needs web ports ${base} to ${last}, past 65535: pick a lower --web-port, or --web-port 0`,
      'worker',
    )
  }
  for (const [i, port] of ports.entries()) {
    if (port !== 0 && !(await portFree(host, port))) {
      throw new CliFailure(
        `web port ${port} on ${host} (worker ${i}'s) is in use: pick another --web-port, or --web-port 0 for free ports`,
      )
    }
  }
  return { ...plan, ports }
}

/** The banner's `web` row for a pool. */
export function poolWebDescription(plan: PoolPlan): string {
  const ports = plan.ports
  if (ports === undefined) return 'off'
  if (ports[0] === 0) return `http://${plan.host}:<free port>/ each (printed when ready)`
  if (ports.length === 1) return `http://${plan.host}:${ports[0]}/`
  return `http://${plan.host}:${ports[0]}/ to :${ports[ports.length - 1]}/ (w0 to w${ports.length - 1})`
}

/** Whether a server could listen on `host:port` now. */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)))
  })
}
