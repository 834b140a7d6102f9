import { randomUUID } from 'node:crypto'
import { HEADERS } from '../base/headers.js'
import { tpKey } from '../base/topicPartition.js'
import type { Agent } from '../agents/agent.js'
import { AgentRuntime } from '../agents/agentRuntime.js'
import type { ActorContext } from '../streams/context.js'
import { actorContext } from '../streams/context.js'
import { ConfigurationError, EncodeError, MephistoError, NotReadyError, TransactionError } from '../base/errors.js'
import type { StreamEventInfo } from '../sensors/sensor.js'
import type { SensorSet, SensorStates } from '../sensors/sensorSet.js'
import { memoryStore } from '../stores/memoryStore.js'
import type { Store, TableStore } from '../stores/store.js'
import { StreamEvent } from '../streams/event.js'
import type { EventQueue } from '../streams/eventQueue.js'
import type { Pull, RepartitionSpec } from '../streams/stream.js'
import type { Table } from '../tables/table.js'
import { TableState } from '../tables/tableState.js'
import type { Codec } from '../topics/codec.js'
import { json, string } from '../topics/codec.js'
import type { Message } from '../topics/topic.js'
import { Channel, Topic, toHeaders } from '../topics/topic.js'
import { createTransport } from '../transport/createTransport.js'
import type {
  CommitOffset,
  OutgoingRecord,
  RawRecord,
  RecordBatch,
  RecordMetadata,
  TopicPartition,
  TopicSpec,
  TransactionalProducer,
  Transport,
  TransportConsumer,
  TransportProducer,
} from '../transport/transport.js'
import { WebServer } from '../web/webServer.js'
import type { App, StartOptions } from '../app/app.js'
import type { Clock, TimerHandle } from '../base/clock.js'
import { realClock } from '../base/clock.js'
import type { Logger } from '../base/logger.js'
import type { Delivery } from '../streams/offsetTracker.js'
import { OffsetTracker } from '../streams/offsetTracker.js'
import { parseCron, Scheduler } from '../base/schedule.js'

export type WorkerState = 'starting' | 'running' | 'stopping' | 'stopped' | 'crashed'


/** A partition's offsets and what the worker knows of it. */
type PartitionTracker = OffsetTracker & { tp: TopicPartition; committed: number; revoked: boolean }

interface Subscriber {
  agent: AgentRuntime
  queue: EventQueue<StreamEvent<any, any>>
}

interface Subscription {
  topic: Topic<any, any> | Channel<any, any>
  subscribers: Subscriber[]
}

interface PendingAsk {
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
  timer: TimerHandle
}

/** Key codec of repartition topics: strings as they are, numbers and booleans as their text. */
const groupKeyCodec: Codec<unknown> = {
  encode: (k) => string().encode(typeof k === 'string' ? k : String(k)),
  decode: (b) => b.toString('utf8'),
}

/** `max.message.bytes` of the dead-letter topics Mephisto creates: 16 MiB. */
const DLQ_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/**
 * One running instance of an App: the consumer, the producer, the agents' actors, the tables'
 * state, offset tracking and commits. `App.start()` makes a new one each time, so a crashed
 * worker leaves nothing behind that a restarted one could trip on.
 */
export class Worker {
  state: WorkerState = 'starting'
  readonly id = randomUUID()
  readonly clock: Clock
  readonly logger: Logger
  readonly sensors: SensorSet
  readonly transport: Transport
  private readonly store: Store
  private producer!: TransportProducer
  private consumer: TransportConsumer | undefined
  private readonly agents = new Map<Agent<any, any, any>, AgentRuntime>()
  private readonly subscriptions = new Map<string, Subscription>()
  private readonly trackers = new Map<string, PartitionTracker>()
  private readonly tableStates = new Map<Table<any, any>, TableState<any, any>>()
  private readonly internalTopics = new Map<string, Topic<any, any>>()
  private readonly asks = new Map<string, PendingAsk>()
  private readonly deadLettered = new Map<string, number>()
  private readonly scheduler: Scheduler
  private commitTimer: TimerHandle | undefined
  private committing: Promise<void> | null = null
  private commitAgain = false
  private acksSinceCommit = 0
  private busy = 0
  private channelOffsets = new Map<string, number>()
  private keepAlive: NodeJS.Timeout | undefined
  private leader = false
  private crashError: unknown
  /** processingGuarantee 'exactly_once': outputs, changelogs and offsets commit in transactions. */
  readonly exactlyOnce: boolean
  /**
   * Exactly-once: the transaction unit is a partition number. The co-partitioning assignment gives
   * partition p of every subscribed topic to one worker, and table partition p is written by the
   * events of those partitions only, so one transaction per p covers a table shard, the offsets
   * of every topic feeding it and the outputs of their events.
   */
  private readonly txProducers = new Map<number, TransactionalProducer>()
  /** Exactly-once: outputs of events, by partition number, waiting for the next transaction. */
  private txOutputs = new Map<number, OutgoingRecord[]>()
  private txBuffered = 0
  /** Exactly-once: events handed to actors and not yet acked; a commit snapshots at zero. */
  private handedOut = 0
  /** Exactly-once: closed while a commit waits for the actors to finish their events. */
  private gate: Promise<void> | undefined
  private quiesced: (() => void) | undefined
  private lastQuiesceWarning = 0
  /** True once the consumer subscribed: no more topics can be added. */
  subscribed = false
  /** The web server, when enabled; it listens from the start of `start()`, so `/health` answers 503 while recovering. */
  readonly web: WebServer | undefined

  constructor(
    readonly app: App,
    overrides: StartOptions,
  ) {
    this.clock = overrides.clock ?? realClock
    this.logger = app.logger
    this.sensors = app.sensors
    this.transport = overrides.transport ?? createTransport(app.options.broker ?? 'memory://', app.options)
    this.exactlyOnce = app.options.processingGuarantee === 'exactly_once'
    const store = overrides.store ?? app.options.store ?? 'memory://'
    this.store = resolveStore(store)
    this.scheduler = new Scheduler(this.clock, (name, fn) => this.runJob(name, fn))
    // With a transport override (the testkit, tests) the server is off unless the app asks for it.
    const web = app.options.web ?? (overrides.transport ? false : {})
    if (web !== false) this.web = new WebServer(this, web)
  }

  get leaderTopic(): string {
    return `${this.app.id}-__leader`
  }

  get isLeader(): boolean {
    return this.leader
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
    this.producer = this.transport.producer()
    for (const a of app.agents) {
      const rt = new AgentRuntime(a, this, app.options.maxBufferedEvents ?? 1000)
      this.agents.set(a, rt)
      this.addSubscriber(a.source, rt, rt.queue)
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
      this.tableStates.set(t, new TableState(t, ts, this.sensors, this.clock, () => this.requestCommit()))
    }
    // Actors start before the group is joined: groupBy()/through() called at the top of an agent
    // body register their topics now, so the consumer subscribes to them from the start.
    for (const rt of this.agents.values()) rt.start()
    await new Promise((r) => setImmediate(r))
    this.assertAlive()
    await this.transport.admin.ensureTopics(this.topicSpecs())
    await this.checkCopartitioning()

    const topics = [...this.subscriptions.values()]
      .filter((s) => s.topic instanceof Topic)
      .map((s) => s.topic.name)
    this.subscribed = true
    if (topics.length > 0) {
      topics.push(this.leaderTopic)
      this.consumer = this.transport.consumer({
        groupId: app.id,
        fromBeginning: app.options.autoOffsetReset !== 'latest',
      })
      await this.consumer.start(topics, {
        onAssign: (tps) => this.onAssign(tps),
        onRevoke: (tps) => this.onRevoke(tps),
        onBatch: (batch) => this.onBatch(batch),
        onLost: (err) => {
          this.logger.error('the consumer is gone; the worker stops without committing', { err })
          void this.crash(err)
        },
      })
    } else {
      // No stream to read: the worker leads itself, and owns every table partition.
      this.leader = true
      await this.recoverTables(null)
    }
    // An actor may have crashed the worker while it was starting (an agent body that throws
    // before reading): report that instead of coming up as a running zombie.
    this.assertAlive()
    this.state = 'running'
    this.keepAlive = setInterval(() => {}, 1 << 30)
    this.scheduleCommit()
    for (const t of app.timers) {
      this.scheduler.every(
        t.ms,
        t.options.name ?? `timer(${t.ms}ms)`,
        this.leaderGate(t.fn, t.options.onLeader),
      )
    }
    for (const c of app.crontabs) {
      const cron = parseCron(c.expr, c.options.timezone)
      this.scheduler.cron(
        cron,
        c.options.name ?? `crontab(${c.expr})`,
        this.leaderGate(c.fn, c.options.onLeader),
      )
    }
    for (const t of app.tables) {
      for (const w of t.windows) {
        // Windows close on a timer, not when the next event happens to arrive.
        const every = Math.max(1, Math.min(w.stepMs, w.expiresMs || w.stepMs, 10_000))
        this.scheduler.every(every, `windows(${t.name})`, () => w.expire())
      }
    }
    const standbys = [...this.tableStates.values()].filter(
      (ts) => (ts.table.options.standbyReplicas ?? 0) > 0,
    )
    if (standbys.length > 0 && this.consumer) {
      this.scheduler.every(this.app.options.standbyIntervalMs ?? 1000, 'standby replicas', () =>
        this.followStandbys(standbys),
      )
    }
    for (const task of app.tasks) void this.runJob(task.name || 'task', task)
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
  private stopping: Promise<void> | undefined

  /**
   * @internal What a stop is doing now, in words (`mephisto worker` reports it when a stop takes
   * long); undefined unless stopping.
   */
  stopPhase: string | undefined

  private async doStop(): Promise<void> {
    this.scheduler.stop()
    if (this.commitTimer) this.clock.clearTimeout(this.commitTimer)
    // Leaving the group revokes every partition: drain, flush, commit, release.
    this.stopPhase = 'leaving the group (draining, flushing and committing its partitions)'
    await this.consumer?.stop()
    for (const rt of this.agents.values()) rt.close()
    const drain = this.app.options.drainTimeoutMs ?? 30_000
    for (const rt of this.agents.values()) {
      this.stopPhase = `waiting for agent ${rt.agent.name} to finish (drainTimeoutMs ${drain})`
      if (!(await rt.join(drain)))
        this.logger.warn(`agent ${rt.agent.name} did not finish within ${drain} ms`)
    }
    this.stopPhase = 'flushing and committing'
    await this.commit()
    for (const ask of this.asks.values()) {
      this.clock.clearTimeout(ask.timer)
      ask.reject(new NotReadyError('the app stopped before the agent answered'))
    }
    this.asks.clear()
    this.stopPhase = 'closing the producers'
    await this.producer.close()
    for (const p of this.txProducers.values()) await p.close()
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
    this.scheduler.stop()
    if (this.commitTimer) this.clock.clearTimeout(this.commitTimer)
    clearInterval(this.keepAlive)
    for (const rt of this.agents.values()) rt.close()
    for (const ts of this.tableStates.values()) ts.discard()
    for (const ask of this.asks.values()) {
      this.clock.clearTimeout(ask.timer)
      ask.reject(new NotReadyError('the app crashed before the agent answered', { cause: reason }))
    }
    this.asks.clear()
    await Promise.allSettled([
      this.consumer?.abort(),
      this.producer?.abort(),
      ...[...this.txProducers.values()].map((p) => p.close()),
    ])
    for (const ts of this.tableStates.values()) await ts.store.close().catch(() => {})
    await this.transport.close().catch(() => {})
    await this.web?.close().catch(() => {})
  }

  /** An agent asked to crash (onError 'crash', or a failure outside any event). */
  async crash(err: unknown): Promise<void> {
    this.crashError ??= err
    this.logger.error('worker crashed; nothing after the last commit is kept', { err })
    await this.abort(err)
  }

  // ---------------------------------------------------------------- topics and subscriptions

  /** @internal */
  addSubscriber(
    topic: Topic<any, any> | Channel<any, any>,
    agent: AgentRuntime,
    queue: EventQueue<StreamEvent<any, any>>,
  ): void {
    let sub = this.subscriptions.get(topic.name)
    if (!sub) this.subscriptions.set(topic.name, (sub = { topic, subscribers: [] }))
    sub.subscribers.push({ agent, queue })
  }

  /** @internal The repartition topic of a groupBy, created on first use. */
  repartitionTopic(agent: Agent<any, any, any>, spec: RepartitionSpec): Topic<any, any> {
    const name = `${this.app.id}-${agent.name}-${spec.repartition}-repartition`
    let t = this.internalTopics.get(name)
    if (!t) {
      const source = agent.source
      t = new Topic(
        name,
        {
          key: spec.key ?? groupKeyCodec,
          value: source instanceof Topic ? source.valueCodec : json(),
          partitions: spec.partitions ?? this.app.topicPartitions,
          internal: true,
        },
        this.app,
      )
      this.internalTopics.set(name, t)
    }
    return t
  }

  private topicSpecs(): TopicSpec[] {
    const app = this.app
    const replicas = app.options.topicReplicas
    const specs = new Map<string, TopicSpec>()
    const add = (s: TopicSpec): void => {
      if (replicas !== undefined && s.replicas === undefined) s.replicas = replicas
      specs.set(s.name, s)
    }
    for (const t of [...app.topics.values(), ...this.internalTopics.values()]) {
      const o = t.options
      const s: TopicSpec = { name: t.name, partitions: o.partitions ?? app.topicPartitions }
      if (o.replicas !== undefined) s.replicas = o.replicas
      if (o.compacted) s.compacted = true
      if (o.retentionMs !== undefined) s.retentionMs = o.retentionMs
      if (o.config) s.config = o.config
      add(s)
    }
    for (const tb of app.tables) {
      const s: TopicSpec = { name: tb.changelogTopic, partitions: tb.partitions, compacted: true }
      if (tb.options.replicas !== undefined) s.replicas = tb.options.replicas
      add(s)
    }
    for (const a of app.agents) {
      // A dead letter is as large as the record it keeps, plus headers: let the DLQ take records
      // larger than the broker's default 1 MB, or an oversized input record would stop the worker.
      if (!specs.has(a.dlqTopic))
        add({
          name: a.dlqTopic,
          partitions: 1,
          config: { 'max.message.bytes': String(DLQ_MAX_MESSAGE_BYTES) },
        })
    }
    add({ name: this.leaderTopic, partitions: 1 })
    return [...specs.values()]
  }

  /** A table and the topic feeding it must agree on partition counts (tables shard like their source). */
  private async checkCopartitioning(): Promise<void> {
    for (const tb of this.app.tables) {
      const actual = await this.transport.admin.partitionCount(tb.changelogTopic)
      if (actual !== undefined && actual !== tb.partitions) {
        throw new MephistoError(
          'CO_PARTITIONING',
          `table ${tb.name} is declared with ${tb.partitions} partition(s) but its changelog ${tb.changelogTopic} ` +
            `has ${actual}. Declare the table with partitions: ${actual}, or delete the changelog (mephisto reset).`,
        )
      }
    }
  }

  // ---------------------------------------------------------------- consuming

  private async onAssign(tps: TopicPartition[]): Promise<void> {
    const state = this.sensors.onAssignmentStart(tps)
    try {
      if (this.exactlyOnce && this.consumer) await this.fence(tps)
      // Stable under exactly-once: the fenced owner's last transaction may still be applying its offsets.
      const committed = this.consumer ? await this.consumer.committed(tps, { stable: this.exactlyOnce }) : []
      if (this.exactlyOnce && this.consumer?.seek) {
        // Read after the fence: the previous owner's last transaction is settled by now, while
        // the position the client resolved on joining may predate it.
        this.consumer.seek(committed.filter((c) => c.offset >= 0 && c.topic !== this.leaderTopic))
      }
      const committedBy = new Map(committed.map((c) => [tpKey(c.topic, c.partition), c.offset]))
      const partitions = new Set<number>()
      for (const tp of tps) {
        if (tp.topic === this.leaderTopic) {
          this.leader = true
          continue
        }
        const t = Object.assign(new OffsetTracker(), {
          tp,
          committed: committedBy.get(tpKey(tp.topic, tp.partition)) ?? -1,
          revoked: false,
        })
        this.trackers.set(tpKey(tp.topic, tp.partition), t)
        partitions.add(tp.partition)
      }
      await this.recoverTables([...partitions])
      this.sensors.onAssignmentCompleted(state, tps)
    } catch (err) {
      this.sensors.onAssignmentError(state, err)
      throw err
    }
  }

  /**
   * Recovers the given partitions (`null`: all) of every table that it does not own yet, tables
   * side by side and partitions in parallel within each (TableState.recoverMany).
   */
  private async recoverTables(partitions: readonly number[] | null): Promise<void> {
    await Promise.all(
      [...this.tableStates.values()].map(async (ts) => {
        // recoverMany skips the partitions the table already owns.
        const mine =
          partitions?.filter((p) => p < ts.table.partitions) ??
          Array.from({ length: ts.table.partitions }, (_, p) => p)
        const replayed = await ts.recoverMany(this.transport, mine)
        mine.forEach((p, i) => {
          if (replayed[i]! > 0)
            this.logger.info(`recovered table ${ts.table.name}[${p}]`, { records: replayed[i] })
        })
      }),
    )
  }

  private async onRevoke(tps: TopicPartition[]): Promise<void> {
    const state = this.sensors.onRebalanceStart(tps)
    const revoked = new Set<string>()
    for (const tp of tps) {
      if (tp.topic === this.leaderTopic) this.leader = false
      const t = this.trackers.get(tpKey(tp.topic, tp.partition))
      if (t) {
        t.revoked = true
        revoked.add(tpKey(tp.topic, tp.partition))
      }
    }
    // Queued events of revoked partitions are not processed here: the next owner gets them
    // again from the committed offset. Events already in an actor's hands are let finish.
    const dropped = new Set<Delivery>()
    for (const sub of this.subscriptions.values()) {
      for (const s of sub.subscribers) {
        const removed = s.queue.remove((e) => revoked.has(tpKey(e.topic, e.partition)))
        for (const { delivery } of removed) {
          if (!delivery) continue
          const tracker = delivery.tracker as OffsetTracker
          tracker.inFlight--
          dropped.add(delivery)
        }
      }
    }
    // Dropped, they are no longer active here (the Monitor's messages.active).
    for (const d of dropped) this.sensors.onMessageOut((d.tracker as PartitionTracker).tp, d.offset)
    for (const rt of this.agents.values()) rt.flushBatches()
    const deadline = Date.now() + (this.app.options.drainTimeoutMs ?? 30_000)
    for (;;) {
      let inFlight = 0
      for (const k of revoked) inFlight += Math.max(0, this.trackers.get(k)?.inFlight ?? 0)
      if (inFlight === 0 || this.state === 'crashed') break
      if (Date.now() > deadline) {
        this.logger.warn(
          `rebalance: ${inFlight} event(s) still in progress after the drain timeout; committing what is done`,
        )
        break
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    try {
      if (this.state !== 'crashed') await this.commit()
    } catch (err) {
      // Lost partitions refuse commits (the group moved on): their events are redelivered to
      // the next owner. Release them all the same, or every later commit would fail on them.
      this.logger.warn('rebalance: the commit of revoked partitions failed; they will be redelivered', {
        err,
      })
    } finally {
      for (const k of revoked) this.trackers.delete(k)
      // Release table partitions no topic of ours is assigned any more.
      const still = new Set([...this.trackers.values()].map((t) => t.tp.partition))
      const dropped = new Set(tps.map((tp) => tp.partition).filter((p) => !still.has(p)))
      for (const ts of this.tableStates.values()) {
        for (const p of dropped) if (ts.owns(p)) await ts.release(p)
      }
      for (const p of dropped) {
        const producer = this.txProducers.get(p)
        this.txProducers.delete(p)
        this.txOutputs.delete(p)
        await producer?.close()
      }
      this.sensors.onRebalanceEnd(state)
    }
  }

  private async onBatch(batch: RecordBatch): Promise<void> {
    const key = tpKey(batch.topic, batch.partition)
    const tracker = this.trackers.get(key)
    const sub = this.subscriptions.get(batch.topic)
    if (!tracker || tracker.revoked || !sub || !(sub.topic instanceof Topic)) return
    const topic = sub.topic
    const subs = sub.subscribers
    const sensors = this.sensors
    const tp = tracker.tp
    const keyCodec = topic.keyCodec
    const valueCodec = topic.valueCodec
    const onAck = this.onAck
    for (const r of batch.records) {
      if (tracker.revoked || this.state === 'crashed') return
      sensors.onMessageIn(tp, r.offset, (r.value?.length ?? 0) + (r.key?.length ?? 0))
      let k: unknown
      let v: unknown
      try {
        k = r.key === null ? null : keyCodec.decode(r.key)
        v = r.value === null ? null : valueCodec.decode(r.value)
      } catch (err) {
        const d = tracker.track(r.offset, 1)
        const dlqs = new Set(subs.map((s) => s.agent.agent))
        for (const agent of dlqs) {
          // Under exactly-once this buffers synchronously, so no commit falls between it and the ack.
          const sent = this.deadLetterRaw(r, err, agent)
          if (sent) await sent
        }
        tracker.ack(d)
        sensors.onMessageOut(tp, r.offset)
        this.acked()
        continue
      }
      const d = tracker.track(r.offset, subs.length)
      tracker.inFlight += subs.length
      for (let i = 0; i < subs.length; i++) {
        const s = subs[i]!
        // The timestamp stays in the record until someone reads it.
        const e = new StreamEvent(k, v, r.headers, r.topic, r.partition, r.offset, undefined, d, onAck, r)
        e.origin = s.queue
        const wait = s.queue.push(e)
        if (wait) await wait
      }
    }
    const last = batch.records[batch.records.length - 1]
    if (last) sensors.onOffsets(tp, { read: last.offset, end: batch.highWatermark })
  }

  private readonly onAck = (e: StreamEvent<any, any>): void => {
    // The event is its own StreamEventInfo (stream, topic, partition, offset): no allocation per event.
    if (e.stream !== undefined)
      this.sensors.onStreamEventOut(e as StreamEventInfo, e.sensorState as SensorStates)
    if (e.handedOut) {
      e.handedOut = false
      if (--this.handedOut === 0) this.quiesced?.()
    }
    const d = e.delivery as Delivery | undefined
    if (d) {
      const t = d.tracker
      t.inFlight--
      if (t.ack(d)) this.sensors.onMessageOut((t as PartitionTracker).tp, d.offset)
    }
    if (this.asks.size > 0) {
      const id = e.headers[HEADERS.correlationId]
      if (id) this.answer(id.toString(), undefined)
    }
    this.acked()
  }

  private acked(): void {
    if (++this.acksSinceCommit >= (this.app.options.commitEvery ?? 10_000)) {
      this.acksSinceCommit = 0
      this.requestCommit()
    }
  }

  /** @internal A stream handed an event to user code. */
  eventIn(agent: string, e: StreamEvent<any, any>): void {
    const root = e.root
    root.stream = agent
    root.sensorState = this.sensors.onStreamEventIn(root as StreamEventInfo)
  }

  // ---------------------------------------------------------------- producing

  /** @internal */
  async sendTo(
    target: Topic<any, any> | Channel<any, any>,
    message: Message<any, any>,
    wait: boolean,
  ): Promise<RecordMetadata | undefined> {
    if (this.state === 'crashed' || this.state === 'stopped') {
      throw new NotReadyError(`cannot send to ${target.name}: the worker has ${this.state}`)
    }
    if (message === null || typeof message !== 'object' || !('value' in message)) {
      throw new TypeError(`send to ${target.name}: pass { key?, value, headers?, partition? }`)
    }
    if (target instanceof Channel) return this.sendToChannel(target, message)
    let key: Buffer | null = null
    let value: Buffer | null = null
    try {
      if (message.key !== undefined && message.key !== null) key = target.keyCodec.encode(message.key)
      if (message.value !== null) value = target.valueCodec.encode(message.value)
    } catch (cause) {
      throw new EncodeError(`cannot encode the message for ${target.name}: ${(cause as Error).message}`, {
        cause,
      })
    }
    const record = {
      topic: target.name,
      key,
      value,
      headers: toHeaders(message.headers),
      timestamp: message.timestamp ?? this.clock.now(),
    } as RawRecordOut
    if (message.partition !== undefined) record.partition = message.partition
    const state = this.sensors.onSendInitiated(target.name, value?.length ?? 0)
    if (this.exactlyOnce) {
      const group = this.transactionOf(actorContext.getStore()?.event)
      if (group !== undefined) {
        if (wait) {
          const err = new ConfigurationError(
            `sendAndWait to ${target.name} inside an agent is not available under exactly_once: the ` +
              "record is written when the event's transaction commits, after the agent is done with it. Use send().",
          )
          this.sensors.onSendError(state, target.name, err)
          throw err
        }
        this.bufferTransactional(group, record)
        this.sensors.onSendCompleted(state, target.name)
        return undefined
      }
    }
    try {
      if (wait) {
        const meta = await this.producer.sendAndWait(record)
        this.sensors.onSendCompleted(state, target.name)
        return meta
      }
      await this.producer.send(record)
      this.sensors.onSendCompleted(state, target.name)
      return undefined
    } catch (err) {
      this.sensors.onSendError(state, target.name, err)
      throw err
    }
  }

  private async sendToChannel(
    channel: Channel<any, any>,
    message: Message<any, any>,
  ): Promise<RecordMetadata> {
    const sub = this.subscriptions.get(channel.name)
    const offset = this.channelOffsets.get(channel.name) ?? 0
    this.channelOffsets.set(channel.name, offset + 1)
    const headers = toHeaders(message.headers)
    const ts = message.timestamp ?? this.clock.now()
    for (const s of sub?.subscribers ?? []) {
      const e = new StreamEvent(
        message.key ?? null,
        message.value,
        headers,
        channel.name,
        0,
        offset,
        ts,
        undefined,
        this.onAck,
      )
      e.origin = s.queue
      const wait = s.queue.push(e)
      if (wait) await wait
    }
    return { topic: channel.name, partition: 0, offset }
  }

  /** @internal What groupBy/through/echo send. Keeps the event's headers. */
  async forward(
    target: Topic<any, any> | Channel<any, any>,
    key: unknown,
    value: unknown,
    event: StreamEvent<any, any>,
  ): Promise<void> {
    await this.sendTo(target, { key, value, headers: event.headers }, false)
  }

  /** @internal An agent generator yielded `value` while processing `ctx.event`. */
  async yielded(agent: Agent<any, any, any>, ctx: ActorContext, value: unknown): Promise<void> {
    const event = ctx.event
    for (const sink of agent.sinks) {
      if (typeof sink === 'function') await sink(value)
      else if (sink instanceof Topic || sink instanceof Channel) await sink.send({ value })
      else await sink.send({ value })
    }
    const id = event?.headers[HEADERS.correlationId]
    if (id) this.answer(id.toString(), value)
  }

  /** @internal */
  async ask(agent: Agent<any, any, any>, message: Message<any, any>, timeoutMs: number): Promise<unknown> {
    if (this.exactlyOnce && this.transactionOf(actorContext.getStore()?.event) !== undefined) {
      throw new ConfigurationError(
        `ask ${agent.name} from inside an agent is not available under exactly_once: the request is ` +
          "written when the event's transaction commits, which waits for this agent to finish the event. " +
          'Use send() and let the other agent answer on a topic.',
      )
    }
    const id = randomUUID()
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.asks.delete(id)
        reject(new MephistoError('ASK_TIMEOUT', `agent ${agent.name} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.asks.set(id, { resolve, reject, timer })
    })
    const headers = { ...(message.headers ?? {}), [HEADERS.correlationId]: id, [HEADERS.replyTo]: this.id }
    try {
      await agent.source.send({ ...message, headers })
    } catch (err) {
      const pending = this.asks.get(id)
      if (pending) {
        this.clock.clearTimeout(pending.timer)
        this.asks.delete(id)
      }
      throw err
    }
    return reply
  }

  private answer(id: string, value: unknown): void {
    const pending = this.asks.get(id)
    if (!pending) return
    this.asks.delete(id)
    this.clock.clearTimeout(pending.timer)
    pending.resolve(value)
  }

  // ---------------------------------------------------------------- errors

  /** @internal Sends the event's original bytes to the agent's dead-letter topic. */
  async deadLetter(event: StreamEvent<any, any>, err: unknown, agent: Agent<any, any, any>): Promise<void> {
    const raw: RawRecord = event.raw ?? {
      topic: event.topic,
      partition: event.partition,
      offset: event.offset,
      timestamp: event.timestamp,
      key: event.key === null || event.key === undefined ? null : Buffer.from(String(event.key)),
      value: json().encode(event.value),
      headers: event.headers,
    }
    await this.deadLetterRaw(raw, err, agent)
  }

  private deadLetterRaw(r: RawRecord, err: unknown, agent: Agent<any, any, any>): Promise<void> | undefined {
    const message = (err as Error)?.message ?? String(err)
    const code = err instanceof MephistoError ? err.code : 'AGENT_FAILED'
    const headers = {
      ...r.headers,
      [HEADERS.error]: Buffer.from(message.slice(0, 4096)),
      [HEADERS.errorCode]: Buffer.from(code),
      [HEADERS.errorClass]: Buffer.from((err as Error)?.name ?? 'Error'),
      [HEADERS.sourceTopic]: Buffer.from(r.topic),
      [HEADERS.sourcePartition]: Buffer.from(String(r.partition)),
      [HEADERS.sourceOffset]: Buffer.from(String(r.offset)),
      [HEADERS.sourceTimestamp]: Buffer.from(String(r.timestamp)),
      [HEADERS.agent]: Buffer.from(agent.name),
      [HEADERS.failedAt]: Buffer.from(String(this.clock.now())),
    }
    const dlq = agent.dlqTopic
    const record = { topic: dlq, key: r.key, value: r.value, headers, timestamp: r.timestamp }
    const group = this.exactlyOnce ? this.transactionOfRecord(r.topic, r.partition) : undefined
    if (group !== undefined) {
      this.bufferTransactional(group, record)
      this.deadLettered_(r, dlq, message, code)
      return undefined
    }
    return this.producer.send(record).then(() => this.deadLettered_(r, dlq, message, code))
  }

  private deadLettered_(r: RawRecord, dlq: string, message: string, code: string): void {
    // The first few at warn, then one in a thousand: a flood of bad input must not flood the log.
    const n = (this.deadLettered.get(dlq) ?? 0) + 1
    this.deadLettered.set(dlq, n)
    const log = n <= 10 || n % 1000 === 0 ? this.logger.warn : this.logger.debug
    log.call(
      this.logger,
      `dead-lettered ${r.topic}[${r.partition}]@${r.offset} to ${dlq} (${n} so far): ${message}`,
      { code },
    )
    this.sensors.onDlq({ topic: r.topic, partition: r.partition, offset: r.offset }, dlq, code)
  }

  // ---------------------------------------------------------------- exactly-once

  /** The transactional id of partition number `p`. */
  transactionalId(p: number): string {
    return `${this.app.id}-tx-${p}`
  }

  /**
   * Registers a transactional producer for each newly assigned partition number. Registering
   * fences the previous owner: its open transaction is aborted before this resolves, so the
   * changelogs and committed offsets read next are final.
   */
  private async fence(tps: TopicPartition[]): Promise<void> {
    const groups = new Set(tps.filter((tp) => tp.topic !== this.leaderTopic).map((tp) => tp.partition))
    await Promise.all(
      [...groups]
        .filter((p) => !this.txProducers.has(p))
        .map(async (p) => {
          this.txProducers.set(p, await this.transport.transactionalProducer(this.transactionalId(p)))
        }),
    )
  }

  /** The transaction an event's effects belong to (its partition number), if it has one. */
  private transactionOf(e: StreamEvent<any, any> | undefined): number | undefined {
    const root = e?.root
    if (root?.delivery === undefined) return undefined
    return this.transactionOfRecord(root.topic, root.partition)
  }

  private transactionOfRecord(topic: string, partition: number): number | undefined {
    return this.trackers.has(tpKey(topic, partition)) && this.txProducers.has(partition)
      ? partition
      : undefined
  }

  private bufferTransactional(group: number, record: OutgoingRecord): void {
    let list = this.txOutputs.get(group)
    if (!list) this.txOutputs.set(group, (list = []))
    list.push(record)
    if (++this.txBuffered >= (this.app.options.commitEvery ?? 10_000)) {
      this.txBuffered = 0
      this.requestCommit()
    }
  }

  /**
   * @internal The pull of an actor from `queue`. Under exactly-once it counts the events handed
   * out, and holds new ones back while a commit waits for the actors to finish theirs.
   */
  pullFrom(queue: EventQueue<StreamEvent<any, any>>): Pull {
    if (!this.exactlyOnce) return () => queue.take()
    const handOut = (e: StreamEvent<any, any> | null): StreamEvent<any, any> | null | Promise<any> => {
      if (e === null) return null
      const gate = this.gate
      if (gate) return gate.then(() => handOut(e))
      this.handedOut++
      e.handedOut = true
      return e
    }
    return () => {
      const got = queue.take()
      return got instanceof Promise ? got.then(handOut) : (handOut(got) as ReturnType<Pull>)
    }
  }

  /** @internal An event goes back to its queue unacked (a retry): it is no longer handed out. */
  handBack(e: StreamEvent<any, any>): void {
    if (!e.handedOut) return
    e.handedOut = false
    if (--this.handedOut === 0) this.quiesced?.()
  }

  /**
   * An exactly-once commit. Holds new events back until every event handed to an actor is acked,
   * so that the snapshot taken then (offsets, outputs, table writes) belongs to whole events only;
   * lets the actors go on, then commits one transaction per partition number.
   */
  private async commitTransactions(): Promise<void> {
    let open!: () => void
    this.gate = new Promise<void>((resolve) => {
      open = resolve
    })
    let snapshot: ReturnType<Worker['snapshotTransactions']>
    try {
      if (this.handedOut > 0) {
        for (const rt of this.agents.values()) rt.flushBatches()
        const limit = Math.max(1000, this.app.options.commitIntervalMs ?? 2800)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, limit)
          timer.unref?.()
          this.quiesced = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.quiesced = undefined
      }
      if (this.dead) return
      if (this.handedOut > 0) {
        const now = Date.now()
        if (now - this.lastQuiesceWarning > 60_000) {
          this.lastQuiesceWarning = now
          this.logger.warn(
            `exactly-once: ${this.handedOut} event(s) still in progress; the commit waits for the next interval`,
          )
        }
        return
      }
      snapshot = this.snapshotTransactions()
    } finally {
      this.gate = undefined
      open()
    }
    const { groups, plain } = snapshot
    if (groups.size === 0 && plain.length === 0 && this.producer.pending() === 0) return
    const state = this.sensors.onCommitInitiated()
    // Sends outside any event (timers, pages, startup) are not part of a transaction.
    const flushed = await this.flushOrRestart(plain)
    const entries = [...groups]
    const results = await Promise.allSettled(
      entries.map(([p, g]) => {
        const producer = this.txProducers.get(p)
        if (!producer)
          throw new TransactionError('TRANSACTION', `no transactional producer for partition ${p}`)
        return producer.commit(g.records, g.offsets, this.app.id)
      }),
    )
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) {
      for (const ts of this.tableStates.values()) ts.abortCommit()
      void this.transactionFailed(failed.reason)
      throw failed.reason
    }
    const written = results.flatMap((r) => (r as PromiseFulfilledResult<RecordMetadata[]>).value)
    for (const ts of this.tableStates.values()) await ts.completeCommit([...flushed, ...written])
    const offsets = entries.flatMap(([, g]) => g.offsets)
    for (const o of offsets) {
      const t = this.trackers.get(tpKey(o.topic, o.partition))
      if (t) t.committed = Math.max(t.committed, o.offset)
      this.sensors.onOffsets(o, { committed: o.offset })
    }
    this.sensors.onCommitCompleted(state, offsets)
  }

  /** Synchronously: what each transaction commits, taken at a point where no event is half done. */
  private snapshotTransactions(): {
    groups: Map<number, { records: OutgoingRecord[]; offsets: CommitOffset[] }>
    plain: OutgoingRecord[]
  } {
    const groups = new Map<number, { records: OutgoingRecord[]; offsets: CommitOffset[] }>()
    const group = (p: number) => {
      let g = groups.get(p)
      if (!g) groups.set(p, (g = { records: [], offsets: [] }))
      return g
    }
    for (const t of this.trackers.values()) {
      if (t.committable > t.committed && this.txProducers.has(t.tp.partition))
        group(t.tp.partition).offsets.push({
          topic: t.tp.topic,
          partition: t.tp.partition,
          offset: t.committable,
        })
    }
    const outputs = this.txOutputs
    this.txOutputs = new Map()
    this.txBuffered = 0
    // A loop, not push(...records): spreading a large array overflows the call stack.
    for (const [p, records] of outputs) {
      const g = group(p).records
      for (const r of records) g.push(r)
    }
    const plain: OutgoingRecord[] = []
    for (const ts of this.tableStates.values()) {
      for (const r of ts.beginCommit()) {
        if (r.partition !== undefined && this.txProducers.has(r.partition)) group(r.partition).records.push(r)
        else plain.push(r)
      }
    }
    return { groups, plain }
  }

  /**
   * A transaction failed (fenced, aborted, timed out): nothing of it is visible. The worker's
   * state past the last commit cannot be trusted, so it rolls back the way a restart does: the
   * app aborts it and starts a new worker, which recovers the tables from the committed
   * changelogs and reads on from the committed offsets.
   */
  private async transactionFailed(err: unknown): Promise<void> {
    if (this.dead) return
    const fenced = err instanceof MephistoError && err.code === 'FENCED'
    this.logger.error(
      fenced
        ? 'exactly-once: fenced by a newer worker for the same partitions; rolling back to the last commit and rejoining'
        : 'exactly-once: a transaction failed and was aborted; rolling back to the last commit and restarting',
      { err },
    )
    await this.app.restartAfter(this, err)
  }

  /** @internal */
  skipped(agent: Agent<any, any, any>, event: StreamEvent<any, any>, err: unknown): void {
    this.logger.warn(`agent ${agent.name} skipped ${event.topic}[${event.partition}]@${event.offset}`, {
      err,
    })
    this.sensors.onSkip(agent.name, err)
  }

  // ---------------------------------------------------------------- tables

  /** @internal */
  tableState<K, V>(table: Table<K, V>): TableState<K, V> {
    const s = this.tableStates.get(table)
    if (!s) throw new NotReadyError(`table ${table.name} does not belong to app ${this.app.id}`)
    return s as TableState<K, V>
  }

  // ---------------------------------------------------------------- commits

  /** Commits in the background; a failure is logged by the commit itself. */
  private requestCommit(): void {
    this.commit().catch(() => {})
  }

  private scheduleCommit(): void {
    const ms = this.app.options.commitIntervalMs ?? 2800
    this.commitTimer = this.clock.setTimeout(() => {
      if (this.state !== 'running') return
      // A failed commit was logged and is retried at the next interval.
      this.commit()
        .catch(() => {})
        .finally(() => this.state === 'running' && this.scheduleCommit())
    }, ms)
  }

  /**
   * Flushes the producer and the table changelogs, then commits every partition up to its
   * highest contiguous acked offset. Serialised: a commit asked for during one runs after it.
   */
  commit(): Promise<void> {
    if (this.committing) {
      this.commitAgain = true
      return this.committing
    }
    this.busy++
    this.committing = (async () => {
      try {
        do {
          this.commitAgain = false
          await this.commitOnce()
        } while (this.commitAgain && this.state !== 'crashed')
      } finally {
        this.committing = null
        this.busy--
      }
    })()
    return this.committing
  }

  /**
   * Sends `records` and flushes the producer. On failure outputs or changelog records may be lost:
   * committing anything past them would lose them for good, so the worker is aborted without
   * committing, and the app starts a new one (as after a failed transaction), which processes
   * them again from the last commit. Most often the broker was out of reach for longer than the
   * client's retries; a fault that persists ends in a crash once the app's restarts run out.
   */
  private async flushOrRestart(records: OutgoingRecord[]): Promise<RecordMetadata[]> {
    try {
      for (const r of records) await this.producer.send(r)
      return await this.producer.flush()
    } catch (err) {
      for (const ts of this.tableStates.values()) ts.abortCommit()
      // A worker that crashed or stopped meanwhile failed its own flush: nothing to restart.
      if (!this.dead) {
        this.logger.error(
          'the producer failed to flush: rolling back to the last commit and restarting the worker',
          { err },
        )
        void this.app.restartAfter(this, err)
      }
      throw new MephistoError('PRODUCER', `flush failed: ${(err as Error)?.message ?? err}`, { cause: err })
    }
  }

  private async commitOnce(): Promise<void> {
    if (this.state === 'crashed' || this.state === 'stopped') return
    if (this.exactlyOnce && this.consumer) return this.commitTransactions()
    const offsets: CommitOffset[] = []
    for (const t of this.trackers.values()) {
      if (t.committable > t.committed)
        offsets.push({ topic: t.tp.topic, partition: t.tp.partition, offset: t.committable })
    }
    const changelog: OutgoingRecord[] = []
    try {
      // A loop, not push(...records): a commit can hold hundreds of thousands of records, and
      // spreading that many arguments overflows the call stack.
      for (const ts of this.tableStates.values()) for (const r of ts.beginCommit()) changelog.push(r)
    } catch (err) {
      for (const ts of this.tableStates.values()) ts.abortCommit()
      this.logger.error('commit failed; it is retried at the next interval', { err })
      throw err
    }
    if (offsets.length === 0 && changelog.length === 0 && this.producer.pending() === 0) return
    const state = this.sensors.onCommitInitiated()
    try {
      const flushed = await this.flushOrRestart(changelog)
      for (const ts of this.tableStates.values()) await ts.completeCommit(flushed)
      if (offsets.length > 0 && this.consumer && !this.dead) {
        await this.consumer.commit(offsets)
        for (const o of offsets) {
          const t = this.trackers.get(tpKey(o.topic, o.partition))
          if (t) t.committed = Math.max(t.committed, o.offset)
          this.sensors.onOffsets(o, { committed: o.offset })
        }
      }
      this.sensors.onCommitCompleted(state, offsets)
    } catch (err) {
      if (err instanceof MephistoError && err.code === 'PRODUCER') throw err
      for (const ts of this.tableStates.values()) ts.abortCommit()
      if (this.dead) return
      this.logger.error('commit failed; it is retried at the next interval', { err })
      throw new MephistoError('COMMIT_FAILED', `commit failed: ${(err as Error)?.message ?? err}`, {
        cause: err,
      })
    }
  }

  // ---------------------------------------------------------------- timers and tasks

  private leaderGate(fn: () => unknown, onLeader: boolean | undefined): () => unknown {
    return onLeader ? () => (this.leader ? fn() : undefined) : fn
  }

  private async runJob(name: string, fn: () => unknown): Promise<void> {
    this.busy++
    try {
      await fn()
    } catch (err) {
      this.logger.error(`${name} failed`, { err })
    } finally {
      this.busy--
    }
  }

  /**
   * Standby replicas: keeps a copy of every table partition this worker does not own, following
   * its changelog, so taking one over after a failover replays only what the copy lacks.
   */
  private async followStandbys(states: TableState<any, any>[]): Promise<void> {
    for (const ts of states) {
      for (let p = 0; p < ts.table.partitions; p++) {
        if (this.state !== 'running') return
        if (!ts.owns(p)) await ts.follow(this.transport, p)
      }
    }
  }

  /** @internal Nothing queued, in progress, being committed or being run by a timer. */
  idle(): boolean {
    if (this.busy > 0) return false
    for (const rt of this.agents.values()) if (!rt.idle()) return false
    return true
  }

  /** @internal Topic-partitions assigned to this worker (the web server's `/topics`). */
  assignment(): TopicPartition[] {
    return [...this.trackers.values()].filter((t) => !t.revoked).map((t) => t.tp)
  }

  /** @internal Events waiting in an agent's queues (the web server's `/agents`). */
  queuedEvents(agentName: string): number | undefined {
    for (const [agent, rt] of this.agents) {
      if (agent.name === agentName) return rt.queues().reduce((n, q) => n + q.size, 0)
    }
    return undefined
  }

  /** @internal For the testkit and tools: the runtime of an agent. */
  agentRuntime(agent: Agent<any, any, any>): AgentRuntime | undefined {
    return this.agents.get(agent)
  }
}

type RawRecordOut = Parameters<TransportProducer['send']>[0]

function resolveStore(store: Store | string): Store {
  if (typeof store !== 'string') return store
  if (store === 'memory://' || store === 'memory') return memoryStore()
  throw new ConfigurationError(
    `unknown store ${JSON.stringify(store)}: use 'memory://' or a Store object such as rocksdbStore({ path }) from @mephisto/store-rocksdb`,
  )
}
