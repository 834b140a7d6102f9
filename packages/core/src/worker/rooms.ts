/**
 * Builds the rooms of one worker and connects them, each to the few others it needs: the one
 * place where the engine's parts meet. It runs nothing; the worker runs the lifecycle.
 */
import type { Clock } from '../base/clock.js'
import type { Logger } from '../base/logger.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import { actorContext } from '../streams/context.js'
import type { Table } from '../tables/table.js'
import type { TableState } from '../tables/tableState.js'
import type { Transport, TransportConsumer, TransportProducer } from '../transport/transport.js'
import { Committer } from './committer.js'
import { Conductor } from './conductor.js'
import { DeadLetters } from './deadLetters.js'
import type { WorkerHost } from './host.js'
import { Jobs } from './jobs.js'
import { LeaderTasks } from './leaderTasks.js'
import { Outbox } from './outbox.js'
import { AssignedPartitions } from './partitions.js'
import { Rebalance } from './rebalance.js'
import { Replies } from './replies.js'
import { RequestReply } from './requestReply.js'
import { Routes } from './routes.js'
import type { WorkerStatus } from './state.js'
import { TopicPlan } from './topicPlan.js'
import { Transactions } from './transactions.js'

export interface Rooms {
  readonly partitions: AssignedPartitions
  readonly plan: TopicPlan
  readonly requests: RequestReply
  /** Exactly-once only. */
  readonly transactions: Transactions | undefined
  readonly outbox: Outbox
  readonly deadLetters: DeadLetters
  readonly committer: Committer
  readonly conductor: Conductor
  readonly rebalance: Rebalance
  readonly jobs: Jobs
  readonly leaderTasks: LeaderTasks
  /** The route book of the group's workers, for the web server. */
  readonly routes: Routes
}

/** What the worker gives its rooms. */
export interface RoomsContext {
  readonly host: WorkerHost
  readonly workerId: string
  readonly clock: Clock
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly transport: Transport
  readonly status: WorkerStatus
  readonly tables: ReadonlyMap<Table<any, any>, TableState<any, any>>
  consumer(): TransportConsumer | undefined
  /** Actors holding a partial `take()` batch hand it over. */
  flushBatches(): void
  /** A transaction or flush failed: the app replaces the worker. */
  restart(err: unknown): Promise<void>
}

export function buildRooms(ctx: RoomsContext): Rooms {
  const { host, clock, logger, sensors, transport, status, tables, consumer, flushBatches, restart } = ctx
  const settings = host.settings
  const partitions = new AssignedPartitions()
  const plan = new TopicPlan(host)
  const leaderTopic = plan.leaderTopic
  // Rooms built later are reached through `rooms`, once all exist.
  const rooms = { partitions, plan } as { -readonly [K in keyof Rooms]: Rooms[K] }
  const transactions =
    settings.processingGuarantee === 'exactly_once'
      ? new Transactions({
          appId: host.id,
          settings,
          logger,
          sensors,
          transport,
          consumer,
          status,
          partitions,
          tables,
          leaderTopic,
          flushBatches,
          flushPlain: (records) => rooms.outbox.flush(records),
          pendingPlain: () => rooms.outbox.pending(),
          requestCommit: () => rooms.committer.request(),
          pause: (tps) => consumer()?.pause(tps),
          resume: (tps) => consumer()?.resume(tps),
          restart,
        })
      : undefined
  rooms.transactions = transactions
  // Routes and replies have a producer of their own: their records are not outputs of any event,
  // and a failure to write one must not fail the worker's commits.
  let internal: TransportProducer | undefined
  const internalProducer = (): TransportProducer => (internal ??= transport.producer())
  const replies = new Replies({
    workerId: ctx.workerId,
    topic: plan.repliesTopic,
    transport,
    logger,
    status,
    producer: internalProducer,
    onReply: (id, reply) => rooms.requests.replied(id, reply),
    waiting: () => rooms.requests.asking,
  })
  rooms.requests = new RequestReply(
    clock,
    ctx.workerId,
    () => transactions?.transactionOf(actorContext.getStore()?.event) !== undefined,
    replies,
  )
  rooms.routes = new Routes({
    workerId: ctx.workerId,
    topic: plan.routesTopic,
    transport,
    logger,
    status,
    producer: internalProducer,
    assigned: () => partitions.assignment().map((tp) => tp.partition),
    readsStreams: () => rooms.conductor.topicNames().length > 0,
  })
  rooms.outbox = new Outbox({
    clock,
    logger,
    sensors,
    status,
    tables,
    transactions,
    deliverToChannel: (channel, message) => rooms.conductor.deliverToChannel(channel, message),
    answer: (id, value) => rooms.requests.answer(id, value),
    restart: (err) => void restart(err),
  })
  rooms.deadLetters = new DeadLetters(rooms.outbox, transactions, clock, logger, sensors)
  rooms.committer = new Committer({
    settings,
    clock,
    logger,
    sensors,
    status,
    partitions,
    tables,
    outbox: rooms.outbox,
    transactions,
    consumer,
  })
  rooms.conductor = new Conductor({
    clock,
    logger,
    sensors,
    status,
    partitions,
    deadLetters: rooms.deadLetters,
    committer: rooms.committer,
    requests: rooms.requests,
    transactions,
    restart,
  })
  rooms.rebalance = new Rebalance({
    settings,
    logger,
    sensors,
    status,
    transport,
    partitions,
    tables,
    conductor: rooms.conductor,
    committer: rooms.committer,
    transactions,
    leaderTopic,
    hooks: host.partitionHooks,
    consumer,
    flushBatches,
    becameLeader: () => rooms.leaderTasks.becameLeader(),
  })
  rooms.jobs = new Jobs(clock, logger, () => rooms.rebalance.leader)
  rooms.leaderTasks = new LeaderTasks(() => rooms.jobs.tasks(host.leaderTasks))
  return rooms
}
