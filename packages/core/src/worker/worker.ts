/**
 * One running instance of an App: it wires the rooms of the engine together and runs the
 * lifecycle (start, stop, abort). `App.start()` makes a new one each time, so a crashed worker
 * leaves nothing behind that a restarted one could trip on. The work itself is done elsewhere:
 * conductor (records to agents, acks), committer (at-least-once commits), transactions
 * (exactly-once), rebalance (assign, revoke, recovery, standbys), outbox (producing), dead
 * letters, request/reply, jobs (timers, crontabs, tasks) and the topic plan.
 */
import { randomUUID } from 'node:crypto'
import type { Agent } from '../agents/agent.js'
import type { AgentRuntimeHost } from '../agents/agentRuntime.js'
import { AgentRuntime } from '../agents/agentRuntime.js'
import type { Clock } from '../base/clock.js'
import { NotReadyError } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { SensorSet } from '../sensors/sensorSet.js'
import { resolveStore } from '../stores/resolveStore.js'
import type { Store, TableStore } from '../stores/store.js'
import type { ActorContext } from '../streams/context.js'
import type { StreamEvent } from '../streams/event.js'
import type { EventQueue } from '../streams/eventQueue.js'
import type { Pull, RepartitionSpec } from '../streams/stream.js'
import type { Table } from '../tables/table.js'
import { TableState } from '../tables/tableState.js'
import type { Channel, Message, Topic } from '../topics/topic.js'
import type { RecordMetadata, TopicPartition, Transport, TransportConsumer } from '../transport/transport.js'
import type { WebHost } from '../web/webHost.js'
import { WebServer } from '../web/webServer.js'
import type { WorkerHost, WorkerServices } from './host.js'
import type { Rooms } from './rooms.js'
import { buildRooms } from './rooms.js'
import type { WorkerState, WorkerStatus } from './state.js'
import { transactionalIdOf } from './transactionProducers.js'
import { workerProbe } from './workerProbe.js'

export type { WorkerState } from './state.js'

export class Worker implements AgentRuntimeHost, WebHost, WorkerStatus {
  state: WorkerState = 'starting'
  readonly id = randomUUID()
  readonly clock: Clock
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly transport: Transport
  /** processingGuarantee 'exactly_once': outputs, changelogs and offsets commit in transactions. */
  readonly exactlyOnce: boolean
  /** The web server, when enabled; it listens from the start of `start()`, so `/health` answers 503 while recovering. */
  readonly web: WebServer | undefined
  /** True once the consumer subscribed: no more topics can be added. */
  subscribed = false
  /**
   * What a stop is doing now, in words (`mephisto worker` reports it when a stop takes long);
   * undefined unless stopping.
   */
  stopPhase: string | undefined

  private readonly store: Store
  private consumer: TransportConsumer | undefined
  private readonly agents = new Map<Agent<any, any, any>, AgentRuntime>()
  private readonly tableStates = new Map<Table<any, any>, TableState<any, any>>()
  private readonly rooms: Rooms
  private keepAlive: NodeJS.Timeout | undefined
  private crashError: unknown
  private stopping: Promise<void> | undefined

  constructor(
    readonly app: WorkerHost,
    services: WorkerServices,
  ) {
    this.clock = services.clock
    this.logger = app.logger
    this.sensors = app.sensors
    this.transport = services.transport
    this.store = services.store
    this.exactlyOnce = app.settings.processingGuarantee === 'exactly_once'
    this.rooms = buildRooms({
      host: app,
      workerId: this.id,
      clock: this.clock,
      logger: this.logger,
      sensors: this.sensors,
      transport: this.transport,
      status: this,
      tables: this.tableStates,
      consumer: () => this.consumer,
      flushBatches: () => {
        for (const rt of this.agents.values()) rt.flushBatches()
      },
      restart: (err) => this.restart(err),
    })
    if (services.web !== false) this.web = new WebServer(this, services.web, this.rooms.routes)
  }

  get leaderTopic(): string {
    return this.rooms.plan.leaderTopic
  }

  get isLeader(): boolean {
    return this.rooms.rebalance.leader
  }

  /** Crashed or stopped: nothing may be sent, flushed or committed any more. */
  get dead(): boolean {
    return this.state === 'crashed' || this.state === 'stopped'
  }

  /** The error that crashed the worker, if one did. */
  get crashReason(): unknown {
    return this.crashError
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    const app = this.app
    if (this.web) {
      const url = await this.web.listen()
      this.logger.info(`web server listening on ${url}`)
    }
    await this.transport.connect()
    this.rooms.outbox.open(this.transport.producer())
    for (const a of app.agents) {
      const rt = new AgentRuntime(a, this, app.settings.maxBufferedEvents)
      this.agents.set(a, rt)
      for (const source of a.sources) this.addSubscriber(source, a, rt.queue)
    }
    for (const t of app.tables) {
      const store = t.options.store ? resolveStore(t.options.store) : this.store
      const ts: TableStore<any> = await store.open({
        appId: app.id,
        table: t.name,
        partitions: t.partitions,
        encode: (v) => t.valueCodec.encode(v),
        decode: (b) => t.valueCodec.decode(b),
      })
      this.tableStates.set(
        t,
        new TableState(t, ts, this.sensors, this.clock, () => this.rooms.committer.request()),
      )
    }
    // Actors start before the group is joined: groupBy()/through() called at the top of an agent
    // body register their topics now, so the consumer subscribes to them from the start.
    for (const rt of this.agents.values()) rt.start()
    await new Promise((r) => setImmediate(r))
    this.assertAlive()
    await this.transport.admin.ensureTopics(this.rooms.plan.specs())
    await this.rooms.plan.checkCopartitioning(this.transport.admin)
    await this.rooms.routes.start(this.web?.advertisedUrl)

    const topics = this.rooms.conductor.topicNames()
    const reads = topics.length > 0
    this.subscribed = true
    // Every worker joins the group, one that reads no stream too: the leader topic's one
    // partition makes exactly one of them the leader (onLeader timers, crontabs and tasks).
    topics.push(this.leaderTopic)
    this.consumer = this.transport.consumer({
      groupId: app.id,
      fromBeginning: app.settings.autoOffsetReset !== 'latest',
      standbyReplicas: Math.max(0, ...app.tables.map((t) => t.options.standbyReplicas ?? 0)),
    })
    await this.consumer.start(topics, {
      onAssign: (tps) => this.rooms.rebalance.onAssign(tps).then(() => this.rooms.routes.changed()),
      onRevoke: (tps) => this.rooms.rebalance.onRevoke(tps).finally(() => this.rooms.routes.changed()),
      onBatch: (batch) => this.rooms.conductor.onBatch(batch),
      onLost: (err) => {
        this.logger.error('the consumer is gone; the worker stops without committing', { err })
        void this.crash(err)
      },
    })
    // No stream shards the tables: the worker owns every table partition.
    if (!reads) await this.rooms.rebalance.recoverTables(null)
    // An actor may have crashed the worker while it was starting (an agent body that throws
    // before reading): report that instead of coming up as a running zombie.
    this.assertAlive()
    this.state = 'running'
    this.sensors.onWorkerStarted(workerProbe(this.agents, this))
    this.keepAlive = setInterval(() => {}, 1 << 30)
    this.rooms.committer.schedule()
    this.rooms.jobs.timers(app.timers)
    this.rooms.jobs.crontabs(app.crontabs)
    this.rooms.jobs.windows(app.tables)
    this.rooms.rebalance.scheduleFollowing(this.rooms.jobs, [...this.tableStates.values()], this.consumer)
    this.rooms.jobs.tasks(app.tasks)
    this.rooms.leaderTasks.started()
    this.logger.info(`worker ready`, {
      app: app.id,
      broker: this.transport.url,
      store: this.store.kind,
      agents: app.agents.length,
      tables: app.tables.length,
    })
  }

  private assertAlive(): void {
    if (this.state === 'crashed') {
      throw this.crashError ?? new NotReadyError(`app ${this.app.id} crashed while starting`)
    }
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'crashed') return
    if (this.state === 'stopping') return this.stopping
    this.state = 'stopping'
    this.stopping = this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    this.rooms.jobs.stop()
    this.rooms.committer.cancel()
    // One drain for the whole stop: the revoke's wait for events in progress and the agents'
    // finishing share drainTimeoutMs, so a stuck event costs it once, not once per step.
    const drain = this.app.settings.drainTimeoutMs
    const deadline = Date.now() + drain
    // Leaving the group revokes every partition: drain, flush, commit, release.
    this.stopPhase = 'leaving the group (draining, flushing and committing its partitions)'
    await this.consumer?.stop()
    for (const rt of this.agents.values()) rt.close()
    for (const rt of this.agents.values()) {
      this.stopPhase = `waiting for agent ${rt.agent.name} to finish (drainTimeoutMs ${drain})`
      // A little time even past the deadline: actors whose queues just closed end within it.
      if (!(await rt.join(Math.max(100, deadline - Date.now()))))
        this.logger.warn(`agent ${rt.agent.name} did not finish within drainTimeoutMs ${drain} ms`)
    }
    this.stopPhase = 'flushing and committing'
    await this.commit()
    await this.rooms.routes.stop()
    this.rooms.requests.rejectAll('the app stopped before the agent answered')
    this.stopPhase = 'closing the producers'
    await this.rooms.outbox.producer.close()
    await this.rooms.transactions?.closeAll()
    this.stopPhase = 'closing the table stores'
    for (const ts of this.tableStates.values()) await ts.store.close()
    this.stopPhase = 'disconnecting from the broker'
    await this.transport.close()
    clearInterval(this.keepAlive)
    this.stopPhase = 'closing the web server'
    await this.web?.close()
    this.stopPhase = undefined
    this.state = 'stopped'
    this.logger.info('worker stopped', { app: this.app.id })
  }

  /** Stops at once: nothing is flushed or committed. What was not committed is redelivered. */
  async abort(reason?: unknown): Promise<void> {
    if (this.state === 'stopped' || this.state === 'crashed') return
    this.state = 'crashed'
    this.crashError ??= reason
    this.rooms.jobs.stop()
    this.rooms.committer.cancel()
    clearInterval(this.keepAlive)
    for (const rt of this.agents.values()) rt.close()
    for (const ts of this.tableStates.values()) ts.discard()
    this.rooms.requests.rejectAll('the app crashed before the agent answered', { cause: reason })
    await Promise.allSettled([
      this.consumer?.abort(),
      this.rooms.outbox.producer?.abort(),
      ...(this.rooms.transactions?.abortAll() ?? []),
    ])
    for (const ts of this.tableStates.values()) await ts.store.close().catch(() => {})
    await this.transport.close().catch(() => {})
    await this.web?.close().catch(() => {})
  }

  /** Rolls back to the last commit: the app aborts this worker and starts a new one. */
  restart(err: unknown): Promise<void> {
    return this.app.restartAfter(this, err)
  }

  /** An agent asked to crash (onError 'crash', or a failure outside any event). */
  async crash(err: unknown): Promise<void> {
    this.crashError ??= err
    this.logger.error('worker crashed; nothing after the last commit is kept', { err })
    await this.abort(err)
  }

  /**
   * Flushes the producer and the table changelogs, then commits every partition up to its
   * highest contiguous acked offset (in transactions under exactly-once).
   */
  commit(): Promise<void> {
    return this.rooms.committer.commit()
  }

  // ---------------------------------------------------------------- for agents (AgentRuntimeHost)

  addSubscriber(
    topic: Topic<any, any> | Channel<any, any>,
    agent: Agent<any, any, any>,
    queue: EventQueue<StreamEvent<any, any>>,
  ): void {
    this.rooms.conductor.subscribe(topic, agent, queue)
  }

  repartitionTopic(agent: Agent<any, any, any>, spec: RepartitionSpec): Topic<any, any> {
    return this.rooms.plan.repartitionTopic(agent, spec)
  }

  pullFrom(queue: EventQueue<StreamEvent<any, any>>): Pull {
    return this.rooms.transactions ? this.rooms.transactions.pullFrom(queue) : () => queue.take()
  }

  handBack(event: StreamEvent<any, any>): void {
    this.rooms.transactions?.handBack(event)
  }

  eventIn(agent: string, event: StreamEvent<any, any>): void {
    this.rooms.conductor.eventIn(agent, event)
  }

  forward(
    target: Topic<any, any> | Channel<any, any>,
    key: unknown,
    value: unknown,
    event: StreamEvent<any, any>,
  ): Promise<void> {
    return this.rooms.outbox.forward(target, key, value, event)
  }

  yielded(agent: Agent<any, any, any>, ctx: ActorContext, value: unknown): Promise<void> {
    return this.rooms.outbox.yielded(agent, ctx, value)
  }

  deadLetter(event: StreamEvent<any, any>, err: unknown, agent: Agent<any, any, any>): Promise<void> {
    return this.rooms.deadLetters.deadLetter(event, err, agent)
  }

  skipped(agent: Agent<any, any, any>, event: StreamEvent<any, any>, err: unknown): void {
    this.logger.warn(`agent ${agent.name} skipped ${event.topic}[${event.partition}]@${event.offset}`, {
      err,
    })
    this.sensors.onSkip(agent.name, err)
  }

  // ---------------------------------------------------------------- for the app

  sendTo(
    target: Topic<any, any> | Channel<any, any>,
    message: Message<any, any>,
    wait: boolean,
  ): Promise<RecordMetadata | undefined> {
    return this.rooms.outbox.sendTo(target, message, wait)
  }

  ask(agent: Agent<any, any, any>, message: Message<any, any>, timeoutMs: number): Promise<unknown> {
    return this.rooms.requests.ask(agent, message, timeoutMs)
  }

  tableState<K, V>(table: Table<K, V>): TableState<K, V> {
    const s = this.tableStates.get(table)
    if (!s) throw new NotReadyError(`table ${table.name} does not belong to app ${this.app.id}`)
    return s as TableState<K, V>
  }

  // ---------------------------------------------------------------- introspection (web, testkit)

  /** Nothing queued, in progress, being committed or being run by a timer. */
  idle(): boolean {
    if (this.rooms.committer.busy || this.rooms.jobs.busy) return false
    for (const rt of this.agents.values()) if (!rt.idle()) return false
    return true
  }

  /** Topic-partitions assigned to this worker (the web server's `/topics`). */
  assignment(): TopicPartition[] {
    return this.rooms.partitions.assignment()
  }

  /** Events waiting in an agent's queues (the web server's `/agents`). */
  queuedEvents(agentName: string): number | undefined {
    for (const [agent, rt] of this.agents) {
      if (agent.name === agentName) return rt.queues().reduce((n, q) => n + q.size, 0)
    }
    return undefined
  }

  /** How long the oldest event in progress in an agent has taken so far (the web server's `/agents` and `/health`). */
  oldestEventAgeMs(agentName: string): number | undefined {
    for (const [agent, rt] of this.agents) if (agent.name === agentName) return rt.oldestEventAgeMs()
    return undefined
  }

  /** The runtime of an agent (the testkit's agent-level context). */
  agentRuntime(agent: Agent<any, any, any>): AgentRuntime | undefined {
    return this.agents.get(agent)
  }

  /** Exactly-once: how many transactional producers this worker holds, and by which model. */
  transactionProducers(): { model: 'partition' | 'worker'; producers: number } | undefined {
    return this.rooms.transactions?.producerCount()
  }

  /** The transactional id of partition number `p` (exactly-once). */
  transactionalId(p: number): string {
    return transactionalIdOf(this.app.id, p)
  }
}
