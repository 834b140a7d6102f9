// The store and the monitor, chosen by environment. Both plug-ins load lazily (dynamic import),
// so the app runs without them installed (and without their native or network dependencies)
// when the environment does not ask for them.
//   MEPHISTO_STORE=memory (default) | rocksdb      MEPHISTO_STORE_PATH=./data (rocksdb's directory)
//   MEPHISTO_MONITOR=none (default) | prometheus | datadog
//   MEPHISTO_METRICS_PREFIX=hit_counter   DD_AGENT_HOST=127.0.0.1   DD_DOGSTATSD_PORT=8125   DD_TAGS=env:dev,team:x
//   MEPHISTO_TRANSPORT=kafkajs (default) | platformatic (the Kafka client, for Kafka brokers)
import type { Sensor, Store } from '@mephisto/core'

type Env = Record<string, string | undefined>

/**
 * Imports an optional plug-in by name. The specifier is a variable so that type-checking and
 * bundling do not require the package: it is resolved only at run time, when asked for.
 */
async function importPlugin<T>(name: string, why: string): Promise<T> {
  try {
    return (await import(name)) as T
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(name)) {
      throw new Error(`${why} needs the package ${name}: pnpm add ${name}`, { cause: err })
    }
    throw err
  }
}

/**
 * MEPHISTO_TRANSPORT=<name>: imports `@mephisto/transport-<name>`, which registers its Kafka client
 * (the app then picks it up from the same variable). The mephisto CLI does this itself; the demo
 * and other entry points that are not the CLI need it here.
 */
export async function transportFromEnv(env: Env = process.env): Promise<void> {
  const name = env.MEPHISTO_TRANSPORT?.trim()
  if (!name || name === 'kafkajs') return
  await importPlugin(`@mephisto/transport-${name}`, `MEPHISTO_TRANSPORT=${name}`)
}

/** The table store: `memory://` unless MEPHISTO_STORE=rocksdb. */
export async function storeFromEnv(env: Env = process.env): Promise<Store | string> {
  const kind = (env.MEPHISTO_STORE ?? 'memory').toLowerCase().replace(/:\/\/$/, '')
  if (kind === 'memory') return 'memory://'
  if (kind === 'rocksdb') {
    const { rocksdbStore } = await importPlugin<{ rocksdbStore(options: { path: string }): Store }>(
      '@mephisto/store-rocksdb',
      'MEPHISTO_STORE=rocksdb',
    )
    return rocksdbStore({ path: env.MEPHISTO_STORE_PATH ?? './data' })
  }
  throw new Error(`MEPHISTO_STORE must be memory or rocksdb (got ${JSON.stringify(env.MEPHISTO_STORE)})`)
}

/** A monitor to add to `app.sensors`: none unless MEPHISTO_MONITOR=prometheus or datadog. */
export async function monitorFromEnv(env: Env = process.env): Promise<Sensor | undefined> {
  const kind = (env.MEPHISTO_MONITOR ?? 'none').toLowerCase()
  const prefix = env.MEPHISTO_METRICS_PREFIX ?? 'hit_counter'
  switch (kind) {
    case 'none':
    case '':
      return undefined
    case 'prometheus': {
      // Served at /metrics on the worker's web server.
      const { PrometheusMonitor } = await importPlugin<{
        PrometheusMonitor: new (o: { prefix: string }) => Sensor
      }>('@mephisto/monitor-prometheus', 'MEPHISTO_MONITOR=prometheus')
      return new PrometheusMonitor({ prefix })
    }
    case 'datadog': {
      const { DatadogMonitor } = await importPlugin<{
        DatadogMonitor: new (o: {
          host: string
          port: number
          prefix: string
          tags: Record<string, string>
        }) => Sensor
      }>('@mephisto/monitor-datadog', 'MEPHISTO_MONITOR=datadog')
      return new DatadogMonitor({
        host: env.DD_AGENT_HOST ?? '127.0.0.1',
        port: Number(env.DD_DOGSTATSD_PORT ?? 8125),
        prefix,
        tags: parseTags(env.DD_TAGS),
      })
    }
    default:
      throw new Error(
        `MEPHISTO_MONITOR must be none, prometheus or datadog (got ${JSON.stringify(env.MEPHISTO_MONITOR)})`,
      )
  }
}

/** `env:dev,team:x` -> `{ env: 'dev', team: 'x' }` (DogStatsD's own DD_TAGS format). */
export function parseTags(text: string | undefined): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const part of (text ?? '').split(/[,\s]+/)) {
    if (!part) continue
    const i = part.indexOf(':')
    if (i > 0) tags[part.slice(0, i)] = part.slice(i + 1)
    else tags[part] = 'true'
  }
  return tags
}
