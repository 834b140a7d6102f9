/**
 * The route book: which worker of the group owns which partition number, and where its web
 * server is, as the workers last said on the `<app>-__routes` topic (one record per worker, keyed
 * by its id; a tombstone when it stops). Pure: records in, owners out.
 */
import type { RawRecord } from '../transport/transport.js'
import type { RouteOwner } from '../web/webHost.js'

/** What a worker says of itself on the routes topic. */
export interface RouteClaim {
  /** The worker's id. */
  readonly worker: string
  /** Where its web server is reached. */
  readonly url: string
  /** The partition numbers of its input topics it owns. */
  readonly partitions: readonly number[]
  /** When it said so (ms since the epoch, its clock). */
  readonly at: number
}

interface Entry {
  readonly claim: RouteClaim
  readonly partitions: ReadonlySet<number>
  /** Its offset on the routes topic: of two claims on one number, the later one holds. */
  readonly offset: number
}

export function encodeClaim(claim: RouteClaim): Buffer {
  return Buffer.from(JSON.stringify(claim), 'utf8')
}

function decodeClaim(value: Buffer): RouteClaim | undefined {
  try {
    const c = JSON.parse(value.toString('utf8')) as Partial<RouteClaim>
    if (
      typeof c.worker === 'string' &&
      typeof c.url === 'string' &&
      Array.isArray(c.partitions) &&
      c.partitions.every((p) => Number.isInteger(p)) &&
      typeof c.at === 'number'
    ) {
      return c as RouteClaim
    }
  } catch {
    // Not ours (or from a newer version): ignored.
  }
  return undefined
}

export class RouteBook {
  private readonly entries = new Map<string, Entry>()

  constructor(
    /** A claim not renewed for this long is stale: its worker is taken to be gone. */
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records of the routes topic, in offset order. */
  apply(records: readonly RawRecord[]): void {
    for (const r of records) {
      const worker = r.key?.toString('utf8')
      if (worker === undefined) continue
      const claim = r.value === null ? undefined : decodeClaim(r.value)
      if (claim === undefined || claim.worker !== worker) {
        this.entries.delete(worker)
        continue
      }
      this.entries.set(worker, { claim, partitions: new Set(claim.partitions), offset: r.offset })
    }
  }

  /** The live worker that claimed partition number `partition` last, if any. */
  ownerOf(partition: number): RouteOwner | undefined {
    const oldest = this.now() - this.ttlMs
    let best: Entry | undefined
    for (const e of this.entries.values()) {
      if (e.claim.at < oldest || !e.partitions.has(partition)) continue
      if (best === undefined || e.offset > best.offset) best = e
    }
    return best && { worker: best.claim.worker, url: best.claim.url }
  }

  /** Every worker's latest claim, stale ones included. */
  claims(): RouteClaim[] {
    return [...this.entries.values()].map((e) => e.claim)
  }
}
