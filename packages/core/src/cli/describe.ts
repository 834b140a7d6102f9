import type { App } from '../app/app.js'
import type { Store } from '../stores/store.js'
import type { Table } from '../tables/table.js'
import { parseKafkaBrokers } from '../transport/createTransport.js'
import type { TopicSpec } from '../transport/transport.js'
import { leaderTopicOf, repliesTopicOf, routesTopicOf } from '../worker/topicPlan.js'

/** What `mephisto topics` and the banner show of a topic. */
export interface TopicRow {
  name: string
  /**
   * `topic` (declared), `internal` (declared internal), `changelog`, `dlq`, `leader`, or the
   * workers' `routes` and ask `replies` (see worker/routes.ts, worker/replies.ts).
   */
  role: 'topic' | 'internal' | 'changelog' | 'dlq' | 'leader' | 'routes' | 'replies'
  partitions: number
  /** Agents reading it. */
  agents: string[]
}

export interface AgentRow {
  name: string
  source: string
  sourceKind: 'topic' | 'channel'
  concurrency: number
  onError: string
  dlq: string
}

export interface TableRow {
  name: string
  partitions: number
  changelog: string
  store: string
  /** `tumbling 1m`, `hopping 1m every 10s` (with their expiry), or none. */
  windows: string[]
  hasDefault: boolean
}

/** The app's topics, as a worker creates them. Repartition topics exist only once a worker made them. */
export function describeTopics(app: App): TopicRow[] {
  const readers = new Map<string, string[]>()
  for (const a of app.agents) {
    for (const source of a.sources) {
      const list = readers.get(source.name) ?? []
      list.push(a.name)
      readers.set(source.name, list)
    }
  }
  const rows = new Map<string, TopicRow>()
  for (const t of app.topics.values()) {
    rows.set(t.name, {
      name: t.name,
      role: t.options.internal ? 'internal' : 'topic',
      partitions: t.options.partitions ?? app.topicPartitions,
      agents: readers.get(t.name) ?? [],
    })
  }
  for (const t of app.tables) {
    rows.set(t.changelogTopic, {
      name: t.changelogTopic,
      role: 'changelog',
      partitions: t.partitions,
      agents: [],
    })
  }
  for (const a of app.agents) {
    if (!rows.has(a.dlqTopic))
      rows.set(a.dlqTopic, { name: a.dlqTopic, role: 'dlq', partitions: 1, agents: [] })
  }
  const leader = leaderTopic(app)
  rows.set(leader, { name: leader, role: 'leader', partitions: 1, agents: [] })
  const routes = routesTopicOf(app.id)
  rows.set(routes, { name: routes, role: 'routes', partitions: 1, agents: [] })
  const replies = repliesTopicOf(app.id)
  rows.set(replies, { name: replies, role: 'replies', partitions: 1, agents: [] })
  return [...rows.values()]
}

/**
 * Whether `topic` is the repartition topic of a `groupBy()` in one of this app's own agents. A
 * worker names them `<app>-<agent>-<name>-repartition` (`TopicPlan.repartitionTopic`), and the
 * `<name>` is known only once the agent runs, so the agent's part is matched against the app's
 * declared agents: `<app>-` alone would also match another app whose id starts with this one's
 * (`orders-eu-...` for app `orders`).
 */
export function isOwnRepartitionTopic(app: App, topic: string): boolean {
  if (!topic.endsWith('-repartition')) return false
  return app.agents.some((a) => {
    const prefix = `${app.id}-${a.name}-`
    return topic.startsWith(prefix) && topic.length > prefix.length + '-repartition'.length
  })
}

/** The topic the worker's group uses to elect the leader of `onLeader` timers (see Worker). */
export function leaderTopic(app: App): string {
  return leaderTopicOf(app.id)
}

export function describeAgents(app: App): AgentRow[] {
  return app.agents.map((a) => ({
    name: a.name,
    source: a.sources.map((s) => s.name).join(', '),
    sourceKind: a.source.kind,
    concurrency: a.concurrency,
    onError: typeof a.onError === 'string' ? a.onError : 'function',
    dlq: a.dlqTopic,
  }))
}

export function describeTables(app: App): TableRow[] {
  // The engine's own tables (a windowed table's stream time) are listed with their table's topics.
  return app.tables
    .filter((t) => !t.options.internal)
    .map((t) => ({
      name: t.name,
      partitions: t.partitions,
      changelog: t.changelogTopic,
      store: storeName(t.options.store ?? app.settings.store),
      windows: t.windowViews.map((w) => w.describe()),
      hasDefault: t.options.default !== undefined,
    }))
}

/** The stores of the app's tables, each once: the app's default and any table's own. */
export function tableStores(app: App): (Store | string)[] {
  const stores = new Set<Store | string>([app.settings.store])
  for (const t of app.tables as Table<any, any>[])
    if (t.options.store !== undefined) stores.add(t.options.store)
  return [...stores]
}

export function storeName(store: Store | string): string {
  return typeof store === 'string' ? store : `${store.kind}://`
}

/**
 * The broker as the app will connect to it, named as its transport names it (`memory://default`,
 * `kafka://h1:9092,h2:9092`): the banner says what the worker's log lines and `reset` say.
 */
export function brokerName(app: App): string {
  const b = app.settings.broker
  const given = Array.isArray(b) ? b.join(',') : b
  // A transport of another package names its broker itself, once made.
  if (app.options.transport !== undefined) return given
  if (typeof b === 'string' && b.startsWith('memory://'))
    return `memory://${b.slice('memory://'.length) || 'default'}`
  try {
    return `kafka://${parseKafkaBrokers(b).join(',')}`
  } catch {
    return given // not host:port: the worker's start says so
  }
}

/** The spec a worker creates a declared topic with (partitions, replicas, configs). */
export function topicSpec(app: App, name: string): TopicSpec | undefined {
  const t = app.topics.get(name)
  if (!t) return undefined
  const o = t.options
  const spec: TopicSpec = { name, partitions: o.partitions ?? app.topicPartitions }
  const replicas = o.replicas ?? app.settings.topicReplicas
  if (replicas !== undefined) spec.replicas = replicas
  if (o.compacted) spec.compacted = true
  if (o.retentionMs !== undefined) spec.retentionMs = o.retentionMs
  if (o.config) spec.config = o.config
  return spec
}
