/**
 * What the web server reads from the running app and worker, as interfaces the web owns: the
 * worker implements `WebHost`, the app `WebApp`. The web never imports the worker or the app.
 */
import type { Agent } from '../agents/agent.js'
import type { Logger } from '../base/logger.js'
import type { Monitor } from '../sensors/monitor.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import type { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { Topic } from '../topics/topic.js'
import type { TopicPartition } from '../transport/transport.js'
import type { PageHandler, PageRouteBy } from './page.js'
import type { RoutePattern } from './route.js'

/** A custom page declared with `app.page(path, handler)`. */
export interface PageRoute {
  route: RoutePattern
  handler: PageHandler
  /** Served by the worker that owns this key (`app.page(path, handler, { routeBy })`). */
  routeBy?: PageRouteBy | undefined
}

/** The worker of the group that owns a partition number, as the route book knows it. */
export interface RouteOwner {
  /** The owner's worker id (what it sends as `x-mephisto-worker`). */
  readonly worker: string
  /** Where its web server is reached. */
  readonly url: string
}

/**
 * Which worker of the app's group owns which partition number (the worker's route book, fed by
 * the `<app>-__routes` topic): what the web server needs to forward a request to the owner.
 */
export interface WebRouter {
  /** This worker's id, sent as `x-mephisto-worker` on what it answers. */
  readonly workerId: string
  /** Whether this worker owns partition number `partition` of its input topics now. */
  owns(partition: number): boolean
  /** The worker that claimed `partition` last (and is still alive), if any. */
  ownerOf(partition: number): RouteOwner | undefined
}

/** The app's declarations and services the pages read. */
export interface WebApp {
  readonly id: string
  /** Where a failing page is logged (its error is not sent to the client). */
  readonly logger: Logger
  readonly monitor: Monitor
  readonly sensors: SensorSet
  readonly topics: ReadonlyMap<string, Topic<any, any>>
  readonly agents: readonly Agent<any, any, any>[]
  readonly tables: readonly Table<any, any>[]
  readonly pages: readonly PageRoute[]
  readonly topicPartitions: number
  tableState<K, V>(table: Table<K, V>): TableState<K, V>
}

/** What the web server reads from the running worker. */
export interface WebHost {
  readonly app: WebApp
  /** The worker's state: `starting`, `running`, `stopping`, `stopped` or `crashed`. */
  readonly state: string
  /** Topic-partitions currently assigned to this worker. */
  assignment(): TopicPartition[]
  /** Events queued for an agent, or undefined when it has no runtime. */
  queuedEvents(agentName: string): number | undefined
  /** How long the oldest event in progress in an agent has taken so far (ms), or undefined when it has no runtime. */
  oldestEventAgeMs(agentName: string): number | undefined
}
