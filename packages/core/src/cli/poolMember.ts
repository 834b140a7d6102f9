/**
 * What a worker started by `mephisto worker --workers N` does differently from one started on its
 * own: it knows its index, keeps its tables in a store directory of its own, tells the supervisor
 * when it is ready and stops when the supervisor is gone. Supervising (spawning, restarting,
 * forwarding output and signals) is workerPool.ts's job, not this file's.
 */
import type { App, AppOptions } from '../app/app.js'
import type { AppSettings } from '../app/options.js'
import { resolveAppOptions } from '../app/options.js'
import type { Store, TableStoreSpec } from '../stores/store.js'
import type { Table } from '../tables/table.js'

/** The environment that marks a worker of a pool: its index (from 0) and the pool's size. */
export const POOL_ENV = { index: 'MEPHISTO_WORKER_INDEX', workers: 'MEPHISTO_WORKERS' } as const

/** A worker's place in its pool. */
export interface PoolMember {
  index: number
  workers: number
}

/** What a worker of a pool sends its supervisor over the IPC channel once it is processing. */
export interface ReadyMessage {
  type: 'mephisto:ready'
  /** The worker's web address (without the trailing slash), if it serves one. */
  web: string | undefined
}

export function isReadyMessage(message: unknown): message is ReadyMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'mephisto:ready'
  )
}

/**
 * This process's place in a pool, or undefined for a worker started on its own. Both are needed:
 * the index in the environment and the IPC channel the supervisor opens, so that a stray
 * MEPHISTO_WORKER_INDEX in a shell does not turn a lone worker into a pool member.
 */
export function poolMember(
  env: NodeJS.ProcessEnv = process.env,
  connected: boolean = typeof process.send === 'function',
): PoolMember | undefined {
  const index = Number(env[POOL_ENV.index])
  const workers = Number(env[POOL_ENV.workers])
  if (!connected || env[POOL_ENV.index] === undefined) return undefined
  if (!Number.isInteger(index) || index < 0 || !Number.isInteger(workers) || index >= workers)
    return undefined
  return { index, workers }
}

/**
 * The app id a store files worker `index`'s tables under: the app id itself for worker 0 (the
 * directory a lone worker uses, so going from one worker to several keeps its state), and
 * `<app id>.w<index>` for the others. Only the store sees it; the group id stays the app id.
 */
export function storeScope(appId: string, index: number): string {
  return index === 0 ? appId : `${appId}.w${index}`
}

/**
 * Gives worker `index` a store directory of its own: every on-disk store of the app (the app's
 * and the tables' own) opens and resets its tables under {@link storeScope}, so two workers of a
 * machine never open one RocksDB directory. Memory stores keep nothing on disk and are left alone.
 * Like `configureApp`, it swaps options of an app that has not started yet.
 */
export function scopeStores(app: App, index: number): void {
  if (index === 0) return
  const scoped = new Map<Store, Store>()
  const scope = <S extends Store | string>(store: S): S | Store => {
    if (typeof store === 'string' || store.kind === 'memory') return store
    let wrapped = scoped.get(store)
    if (!wrapped) scoped.set(store, (wrapped = scopedStore(store, index)))
    return wrapped
  }
  const options: AppOptions = { ...app.options, store: scope(app.settings.store) }
  const writable = app as unknown as { options: AppOptions; settings: AppSettings }
  writable.options = Object.freeze(options)
  writable.settings = resolveAppOptions(options)
  for (const table of app.tables as Table<unknown, unknown>[]) {
    const own = table.options.store
    if (own === undefined) continue
    // The table's options are read when a worker opens its store, so a swap before start() is
    // what declaring the table with this store would have done.
    ;(table as unknown as { options: Table<unknown, unknown>['options'] }).options = Object.freeze({
      ...table.options,
      store: scope(own),
    })
  }
}

function scopedStore(store: Store, index: number): Store {
  const wrapped: Store = {
    kind: store.kind,
    open: <V>(spec: TableStoreSpec<V>) => store.open({ ...spec, appId: storeScope(spec.appId, index) }),
  }
  if (store.reset) wrapped.reset = (appId: string) => store.reset!(storeScope(appId, index))
  return wrapped
}

/** Tells the supervisor that this worker is processing, and where its web server is. */
export function reportReady(web: string | undefined): void {
  const message: ReadyMessage = { type: 'mephisto:ready', web }
  if (process.connected) process.send?.(message)
}

/**
 * Calls `stop` when the supervisor's IPC channel closes: the supervisor died without passing a
 * signal on (SIGKILL, OOM). The worker then stops cleanly on its own instead of running on
 * unsupervised, its output going nowhere.
 */
export function onSupervisorGone(stop: () => void): void {
  process.once('disconnect', () => {
    // Its stdout and stderr were pipes to the supervisor: nobody reads them now, and a write
    // failing with EPIPE must not crash the clean stop.
    for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})
    stop()
  })
}
