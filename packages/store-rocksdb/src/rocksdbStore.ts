import { access, constants, mkdir, readdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Store, TableStore, TableStoreSpec } from '@mephisto/core'
import { ConfigurationError } from '@mephisto/core'
import { RocksDBStoreError } from './errors.js'
import { LruCache } from './lruCache.js'
import { PartitionDb, type RocksDBTuning } from './partitionDb.js'
import { type Cached, RocksDBTableStore } from './rocksdbTableStore.js'

export interface RocksDBStoreOptions {
  /** Directory for all local table state; each app gets `<path>/<appId>/<table>/<partition>`. */
  path: string
  /**
   * Decoded values kept in memory per table (across its partitions), least recently used out
   * first. Bounds the store's JS memory whatever the table size. Default 10 000; 0 disables it.
   */
  cacheSize?: number
  /** RocksDB tuning, applied to every partition database. */
  rocksdb?: RocksDBTuning
}

/** The RocksDB {@link Store}: `reset` is always there. */
export interface RocksDBStore extends Store {
  readonly kind: 'rocksdb'
  /** Removes all local state of `appId`; its tables are rebuilt from their changelogs on the next start. */
  reset(appId: string): Promise<void>
}

/**
 * A table store on RocksDB (npm `rocksdb`): one database per table partition, holding the
 * partition's data and the changelog offset applied to it, written together in one atomic
 * batch. A restart replays only the changelog written after that offset, and tables can be
 * larger than memory: reads go through a bounded cache of decoded values.
 *
 * @example
 * const app = new App({ id: 'hit-counter', store: rocksdbStore({ path: './state' }) })
 */
export function rocksdbStore(options: RocksDBStoreOptions): RocksDBStore {
  return new RocksDBStoreImpl(options)
}

class RocksDBStoreImpl implements RocksDBStore {
  readonly kind = 'rocksdb' as const
  private readonly path: string
  private readonly cacheSize: number
  private readonly tuning: RocksDBTuning
  /** Table stores open in this process, per app: `reset` must not pull files from under them. */
  private readonly openTables = new Map<string, Set<RocksDBTableStore<unknown>>>()

  constructor(options: RocksDBStoreOptions) {
    if (typeof options?.path !== 'string' || options.path === '') {
      throw new ConfigurationError('rocksdbStore({ path }): path must be a non-empty directory path')
    }
    const cacheSize = options.cacheSize ?? 10_000
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new ConfigurationError(`rocksdbStore({ cacheSize }): expected an integer >= 0, got ${cacheSize}`)
    }
    this.path = resolve(options.path)
    this.cacheSize = cacheSize
    this.tuning = options.rocksdb ?? {}
  }

  async open<V>(spec: TableStoreSpec<V>): Promise<TableStore<V>> {
    const dir = join(this.path, segment(spec.appId), segment(spec.table))
    try {
      await mkdir(dir, { recursive: true })
      await access(dir, constants.W_OK)
    } catch (err) {
      throw new RocksDBStoreError(
        'not-writable',
        dir,
        `cannot write the table directory ${dir} (${(err as Error).message}): give rocksdbStore a path this process can write`,
        { cause: err },
      )
    }
    let tables = this.openTables.get(spec.appId)
    if (!tables) this.openTables.set(spec.appId, (tables = new Set()))
    const store: RocksDBTableStore<V> = new RocksDBTableStore<V>(
      dir,
      spec,
      new LruCache<Cached<V>>(this.cacheSize),
      this.tuning,
      () => {
        tables.delete(store as RocksDBTableStore<unknown>)
      },
    )
    tables.add(store as RocksDBTableStore<unknown>)
    return store
  }

  /**
   * Removes all local state of `appId` (what `mephisto reset` calls); the next start rebuilds its
   * tables from their changelogs. Refuses while a worker, here or in another process, has the
   * app's tables open: deleting files under a live RocksDB would corrupt it without its knowing.
   */
  async reset(appId: string): Promise<void> {
    const dir = join(this.path, segment(appId))
    if (this.openTables.get(appId)?.size) {
      throw new RocksDBStoreError(
        'locked',
        dir,
        `app ${appId} has tables open in this process: stop the app before resetting its local state`,
      )
    }
    for (const table of await subdirs(dir)) {
      for (const partition of await subdirs(join(dir, table))) {
        const location = join(dir, table, partition)
        try {
          const db = await PartitionDb.open(location, this.tuning, false)
          await db.close()
        } catch (err) {
          // A corrupt or half-created database is exactly what a reset is for; only a live one stops it.
          if (err instanceof RocksDBStoreError && err.reason === 'locked') throw err
        }
      }
    }
    await rm(dir, { recursive: true, force: true })
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** An app id or table name as one directory name: no separators, no `.`/`..` tricks. */
function segment(name: string): string {
  const s = encodeURIComponent(name)
  return s === '.' || s === '..' || s === '' ? s.replaceAll('.', '%2E') || '%00' : s
}
