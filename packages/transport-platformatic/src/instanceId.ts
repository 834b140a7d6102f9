/**
 * Static membership ids (KIP-345): the default id of a worker process, and the id each consumer of
 * one group in this process takes so that they do not fence each other. It does not join groups.
 */
import { hostname } from 'node:os'

/** Where a worker finds its id: set per worker, or by `mephisto worker --workers N` for its children. */
export const INSTANCE_ENV = { id: 'MEPHISTO_INSTANCE_ID', poolIndex: 'MEPHISTO_WORKER_INDEX' } as const

/**
 * The default static membership id of this process: stable across restarts of the same worker,
 * different for the workers of one `--workers` pool (whose children get `MEPHISTO_WORKER_INDEX`).
 * `MEPHISTO_INSTANCE_ID` when set (`<it>-w<index>` in a pool child, so a pool started with it set
 * still gives each child its own), else the host name and the pool index (`<host>-w<index>`,
 * `-w0` for a lone worker). Two processes on one host that are not one pool's workers need their
 * own `MEPHISTO_INSTANCE_ID`.
 */
export function defaultInstanceId(env: NodeJS.ProcessEnv = process.env, host: string = hostname()): string {
  const given = env[INSTANCE_ENV.id]?.trim()
  const index = Number(env[INSTANCE_ENV.poolIndex])
  const pooled = env[INSTANCE_ENV.poolIndex] !== undefined && Number.isInteger(index) && index >= 0
  if (given) return pooled ? `${given}-w${index}` : given
  const safeHost = host.replace(/[^\w.-]/g, '_') || 'host'
  return `${safeHost}-w${pooled ? index : 0}`
}

/** Ids taken in this process, per cluster and group. */
const taken = new Map<string, Set<string>>()

/** A static membership id held by one consumer until it releases it (stop or abort). */
export interface InstanceIdClaim {
  readonly id: string
  release(): void
}

/**
 * The id a consumer of `group` on `cluster` takes: `base` for the first one in this process,
 * `<base>.2`, `<base>.3`, ... for consumers that run beside it. A consumer made after one was
 * stopped or aborted takes the freed id again, so a worker restarted in-process gets back the
 * partitions of the one it replaces, as a restarted process does.
 */
export function claimInstanceId(cluster: string, group: string, base: string): InstanceIdClaim {
  const key = `${cluster}\u0000${group}`
  let ids = taken.get(key)
  if (ids === undefined) taken.set(key, (ids = new Set()))
  let id = base
  for (let n = 2; ids.has(id); n++) id = `${base}.${n}`
  ids.add(id)
  let released = false
  const held = ids
  return {
    id,
    release: () => {
      if (released) return
      released = true
      held.delete(id)
      if (held.size === 0) taken.delete(key)
    },
  }
}
