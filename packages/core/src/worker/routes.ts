/**
 * Routing between the workers of a group, for the web server: each worker writes what it owns
 * (its partition numbers) and where its web server is to the compacted `<app>-__routes` topic,
 * keyed by its id, after every assignment and revoke and every few seconds as a heartbeat, and a
 * tombstone when it stops; each worker tails the topic into its route book. Transport-independent:
 * kafkajs does not tell group members each other's assignments. A worker without a web server
 * neither writes nor reads it. What the web server does with an owner is web/forwarding.ts.
 */
import type { Logger } from '../base/logger.js'
import type { Transport, TransportProducer } from '../transport/transport.js'
import type { RouteOwner, WebRouter } from '../web/webHost.js'
import type { RouteClaim } from './routeBook.js'
import { encodeClaim, RouteBook } from './routeBook.js'
import type { WorkerStatus } from './state.js'
import { TopicTail } from './topicTail.js'

/** How often a worker says again what it owns. */
export const ROUTE_HEARTBEAT_MS = 3_000
/** How often a worker reads the others' claims. */
export const ROUTE_POLL_MS = 250
/** A claim not renewed within this long is stale: its worker died without a tombstone. */
export const ROUTE_TTL_MS = 10 * ROUTE_HEARTBEAT_MS
/** How long a stop waits for its tombstone to be written. */
const TOMBSTONE_WAIT_MS = 3_000

export interface RoutesDeps {
  readonly workerId: string
  readonly topic: string
  readonly transport: Transport
  readonly logger: Logger
  readonly status: WorkerStatus
  /** The worker's producer, once connected. */
  producer(): TransportProducer
  /** The partition numbers of the input partitions assigned here (and not being revoked). */
  assigned(): Iterable<number>
  /** Whether the worker reads any topic: one that reads none owns every key. */
  readsStreams(): boolean
}

export class Routes implements WebRouter {
  readonly workerId: string
  readonly book = new RouteBook(ROUTE_TTL_MS)
  private url: string | undefined
  private tail: TopicTail | undefined
  private heartbeat: NodeJS.Timeout | undefined
  /** The last claim written, to skip rewriting the same one between heartbeats. */
  private last: string | undefined

  constructor(private readonly deps: RoutesDeps) {
    this.workerId = deps.workerId
  }

  /**
   * Reads the route book from the start of the topic and starts following it and heartbeating,
   * with `url` as this worker's web address; does nothing without one (no web server).
   */
  async start(url: string | undefined): Promise<void> {
    if (url === undefined) return
    this.url = url
    const tail = new TopicTail({
      transport: this.deps.transport,
      topic: this.deps.topic,
      logger: this.deps.logger,
      intervalMs: () => ROUTE_POLL_MS,
      onRecords: (records) => this.book.apply(records),
    })
    this.tail = tail
    await tail.start('start')
    this.heartbeat = setInterval(() => {
      if (this.deps.status.dead) this.close()
      else void this.publish(true)
    }, ROUTE_HEARTBEAT_MS)
    this.heartbeat.unref()
  }

  /** The assignment changed: say so now. */
  changed(): void {
    void this.publish(false)
  }

  /**
   * Stopping: a tombstone, so the others forget this worker at once. Waited for a few seconds at
   * most: without it the others drop the claim when it goes stale.
   */
  async stop(): Promise<void> {
    if (this.url === undefined) return
    this.close()
    let timer: NodeJS.Timeout | undefined
    const written = this.write(null).catch((err: unknown) =>
      this.deps.logger.warn('could not remove this worker from the route book', { err }),
    )
    await Promise.race([written, new Promise((r) => (timer = setTimeout(r, TOMBSTONE_WAIT_MS)))])
    clearTimeout(timer)
  }

  owns(partition: number): boolean {
    if (!this.deps.readsStreams()) return true
    for (const p of this.deps.assigned()) if (p === partition) return true
    return false
  }

  ownerOf(partition: number): RouteOwner | undefined {
    return this.book.ownerOf(partition)
  }

  private close(): void {
    clearInterval(this.heartbeat)
    this.tail?.stop()
    this.url = undefined
  }

  private async publish(heartbeat: boolean): Promise<void> {
    const url = this.url
    if (url === undefined || this.deps.status.dead) return
    const partitions = [...new Set(this.deps.assigned())].sort((a, b) => a - b)
    const said = JSON.stringify(partitions)
    // A heartbeat renews the claim (its time keeps it live); a change is written when it is one.
    if (!heartbeat && said === this.last) return
    this.last = said
    const claim: RouteClaim = { worker: this.workerId, url, partitions, at: Date.now() }
    try {
      await this.write(encodeClaim(claim))
      // Our own claim is in the book at once: a request that comes before the next poll finds it.
      await this.tail?.poll()
    } catch (err) {
      if (!this.deps.status.dead) this.deps.logger.warn('could not write to the route book', { err })
    }
  }

  private write(value: Buffer | null): Promise<unknown> {
    return this.deps.producer().sendAndWait({
      topic: this.deps.topic,
      partition: 0,
      key: Buffer.from(this.workerId, 'utf8'),
      value,
    })
  }
}
