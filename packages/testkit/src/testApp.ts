import type {
  Agent,
  App,
  Channel,
  Message,
  RawRecord,
  RecordMetadata,
  StartOptions,
  Table,
  Topic,
} from '@mephisto/core'
import {
  defaultPartition,
  HEADERS,
  MemoryBroker,
  MemoryTransport,
  MephistoError,
  memoryStore,
} from '@mephisto/core'
import { FakeClock } from './fakeClock.js'

export interface TestAppOptions {
  /** Share a broker with another TestApp (two workers in one group). Default: a fresh one. */
  broker?: MemoryBroker
  /** Share a clock with another TestApp. Default: a fresh fake clock. */
  clock?: FakeClock
  /** Start time of a fresh fake clock (ms since the epoch). Default 2026-01-01T00:00:00Z. */
  now?: number
  /** How long `settle()` may take in real time before it fails. Default 10 000 ms. */
  settleTimeoutMs?: number
  /**
   * Table reads hand out deeply frozen values, so code that changes a value it read instead of
   * `set()`ting a new one throws in the test (in production the change would show until the
   * next restart, then be gone). Applies when the app's store is the memory store (the
   * default), not to tables with a `store` of their own. Default `true`.
   */
  freezeTableValues?: boolean
}

/** A message as it sits on a topic, decoded with the topic's codecs. */
export interface SentMessage<K, V> {
  key: K | null
  value: V | null
  headers: Record<string, string>
  partition: number
  offset: number
  timestamp: number
}

/** A dead-letter entry: the original bytes and why they failed. */
export interface DeadLetter {
  key: string | null
  value: string | null
  error: string
  code: string
  sourceTopic: string
  sourcePartition: number
  sourceOffset: number
  agent: string
  headers: Record<string, string>
}

/** Raw bytes (or text) to put on a topic as a broker would hold them, bypassing codecs. */
export interface RawMessage {
  key?: string | Buffer | null
  value: string | Buffer | null
  headers?: Record<string, string | Buffer>
  partition?: number
  timestamp?: number
}

const groups = new WeakMap<MemoryBroker, Set<TestApp>>()

/**
 * Runs an App in-process on a private memory broker with a fake clock. No Kafka, no sleeps:
 * `settle()` returns once every agent is idle and every buffer is empty, and `advance(ms)`
 * moves time, firing timers, windows, `take` timeouts and commits on the way.
 */
export class TestApp {
  private constructor(
    readonly app: App,
    readonly broker: MemoryBroker,
    readonly clock: FakeClock,
    private readonly settleTimeoutMs: number,
    private readonly freezeTableValues: boolean,
  ) {}

  /** Starts `app` on a fresh memory broker with a fake clock; resolves when it is ready. */
  static async start(app: App, options: TestAppOptions = {}): Promise<TestApp> {
    const clock = options.clock ?? new FakeClock(options.now)
    const broker = options.broker ?? new MemoryBroker({ name: `test-${app.id}`, now: () => clock.now() })
    const t = new TestApp(
      app,
      broker,
      clock,
      options.settleTimeoutMs ?? 10_000,
      options.freezeTableValues ?? true,
    )
    let peers = groups.get(broker)
    if (!peers) groups.set(broker, (peers = new Set()))
    peers.add(t)
    await t.boot()
    await t.settle()
    return t
  }

  private async boot(): Promise<void> {
    // A restarted worker is a peer again: settle() waits for it too.
    this.peers().add(this)
    const start: StartOptions = {
      transport: new MemoryTransport(this.broker, { now: () => this.clock.now() }),
      clock: this.clock,
    }
    // The memory store with frozen values in place of the app's memory store: the documented
    // seam (memoryStore's freezeValues), not a reach into the tables. Another store is kept.
    const store = this.app.settings.store
    const memory =
      typeof store === 'string' ? store === 'memory://' || store === 'memory' : store.kind === 'memory'
    if (this.freezeTableValues && memory) start.store = memoryStore({ freezeValues: true })
    await this.app.start(start)
  }

  /** Sends through the topic's codecs (or to an agent's source, or a channel) and waits for the ack. */
  async send<K, V>(
    target: Topic<K, V> | Channel<V, K> | Agent<V, K, any>,
    message: Message<K, V>,
  ): Promise<RecordMetadata> {
    const dest = 'source' in target ? target.source : target
    return dest.sendAndWait(message)
  }

  /** Puts bytes on a topic as they are: malformed JSON, wrong schemas, foreign producers. */
  async sendRaw(topic: string, message: RawMessage): Promise<number> {
    const toBuf = (x: string | Buffer | null | undefined): Buffer | null =>
      x === null || x === undefined ? null : Buffer.isBuffer(x) ? x : Buffer.from(x, 'utf8')
    const headers: Record<string, Buffer> = {}
    for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = toBuf(v)!
    const partitions = this.broker.partitionCount(topic)
    if (partitions === undefined) throw new Error(`sendRaw: topic ${topic} does not exist on the test broker`)
    const key = toBuf(message.key)
    const partition = message.partition ?? defaultPartition(key, partitions)
    return this.broker.append(topic, partition, {
      key,
      value: toBuf(message.value),
      headers,
      timestamp: message.timestamp ?? this.clock.now(),
    })
  }

  /**
   * Resolves once nothing is left to do: every record delivered, every agent waiting for its
   * next event, no commit or timer job running. Rejects if the worker crashed.
   */
  async settle(): Promise<void> {
    const deadline = Date.now() + this.settleTimeoutMs
    let quiet = 0
    for (;;) {
      this.throwIfCrashed()
      if ([...this.peers()].every((t) => t.idleNow())) {
        if (++quiet >= 3) return
      } else {
        quiet = 0
      }
      if (Date.now() > deadline) {
        throw new Error(
          `settle(): the app did not become idle within ${this.settleTimeoutMs} ms. Busy: ${this.describeBusy()}. ` +
            `An agent waiting on real timers, or one that never asks for its next event, keeps it busy.`,
        )
      }
      await new Promise((r) => setImmediate(r))
    }
  }

  /**
   * Moves the fake clock forward by `ms`, firing each due timer in order and settling after
   * each, then settles at the new time.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError('advance(ms): ms must be >= 0')
    const target = this.clock.now() + ms
    await this.settle()
    while (this.clock.fireNext(target)) await this.settle()
    this.clock.set(target)
    await this.settle()
  }

  /** Commits now (flush + offsets), as the commit interval would. */
  async commit(): Promise<void> {
    await this.app.experimental_testing.commit()
  }

  /** Every message on `topic`, decoded with its codecs, partition by partition. */
  sent<K, V>(topic: Topic<K, V>): SentMessage<K, V>[] {
    return this.records(topic.name).map((r) => ({
      key: r.key === null ? null : topic.keyCodec.decode(r.key),
      value: r.value === null ? null : topic.valueCodec.decode(r.value),
      headers: textHeaders(r.headers),
      partition: r.partition,
      offset: r.offset,
      timestamp: r.timestamp,
    }))
  }

  /** Every record of a topic as bytes. */
  records(topic: string): RawRecord[] {
    if (this.broker.partitionCount(topic) === undefined) return []
    return this.broker.records(topic)
  }

  /** The dead letters of an agent (or of a dead-letter topic by name). */
  deadLetters(agentOrTopic: Agent<any, any, any> | string): DeadLetter[] {
    const topic = typeof agentOrTopic === 'string' ? agentOrTopic : agentOrTopic.dlqTopic
    return this.records(topic).map((r) => {
      const h = textHeaders(r.headers)
      return {
        key: r.key?.toString('utf8') ?? null,
        value: r.value?.toString('utf8') ?? null,
        error: h[HEADERS.error] ?? '',
        code: h[HEADERS.errorCode] ?? '',
        sourceTopic: h[HEADERS.sourceTopic] ?? '',
        sourcePartition: Number(h[HEADERS.sourcePartition]),
        sourceOffset: Number(h[HEADERS.sourceOffset]),
        agent: h[HEADERS.agent] ?? '',
        headers: h,
      }
    })
  }

  /** The group's committed offset per partition of `topic` (-1 where none). */
  committed(topic: Topic<any, any> | string): Map<number, number> {
    return this.broker.groupOffsets(this.app.id, typeof topic === 'string' ? topic : topic.name)
  }

  /** The table, for reads from the test (reads hash the key to its partition, or take `{ partition }`). */
  table<K, V>(table: Table<K, V>): Table<K, V> {
    return table
  }

  /** An agent-level context: `put(value)` processes one value and returns what the agent yielded for it. */
  agent<V, K, R>(agent: Agent<V, K, R>): { put(value: V, options?: { key?: K }): Promise<R | undefined> } {
    return {
      put: async (value, options) => {
        let answered = false
        let answer: R | undefined
        let failure: unknown
        const pending = agent.ask(value, { ...options, timeoutMs: 2 ** 31 - 1 }).then(
          (v) => {
            answered = true
            answer = v
          },
          (err) => {
            failure = err
          },
        )
        await this.settle()
        if (failure) throw failure
        if (!answered) {
          void pending
          throw new Error(`agent ${agent.name} did not finish with the value (it settled without acking it)`)
        }
        return answer
      },
    }
  }

  /** Kills the worker: nothing is flushed or committed; in-memory table state is gone. */
  async crash(): Promise<void> {
    await this.app.experimental_testing.abort(new Error('TestApp.crash()'))
    await this.settlePeers()
  }

  /** Starts the app again on the same broker: it resumes from committed offsets and recovers its tables. */
  async restart(): Promise<void> {
    if (this.app.running) await this.app.stop()
    await this.boot()
    await this.settle()
  }

  /** Stops gracefully (drain, flush, commit) and forgets the test broker. */
  async stop(): Promise<void> {
    await this.app.stop()
    this.peers().delete(this)
  }

  private peers(): Set<TestApp> {
    return groups.get(this.broker)!
  }

  private async settlePeers(): Promise<void> {
    const others = [...this.peers()].filter((t) => t !== this && t.app.running)
    for (const t of others) await t.settle()
  }

  private idleNow(): boolean {
    return this.broker.idle() && this.app.experimental_testing.idle()
  }

  private throwIfCrashed(): void {
    const w = this.app.experimental_testing
    if (
      w.state === 'crashed' &&
      w.crashReason &&
      !(w.crashReason instanceof Error && w.crashReason.message === 'TestApp.crash()')
    ) {
      const reason = w.crashReason
      throw reason instanceof MephistoError || reason instanceof Error ? reason : new Error(String(reason))
    }
  }

  private describeBusy(): string {
    const parts: string[] = []
    if (!this.broker.idle()) parts.push('the broker has records to deliver or a rebalance running')
    if (!this.app.experimental_testing.idle()) parts.push('an agent, timer or commit is still working')
    return parts.join('; ') || 'nothing (timing)'
  }
}

function textHeaders(h: Record<string, Buffer>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) out[k] = v.toString('utf8')
  return out
}
