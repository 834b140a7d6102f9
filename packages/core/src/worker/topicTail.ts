/**
 * Follows partition 0 of a small internal topic outside any consumer group (the route book, the
 * replies of asks): reads it from its start or its end, then polls its end offset and reads what
 * was added. Polling runs on real timers that do not hold the process open, so it works the same
 * on every transport and under the testkit's fake clock. It reads; what the records mean is its
 * owner's business.
 */
import type { Logger } from '../base/logger.js'
import type { RawRecord, Transport } from '../transport/transport.js'

export interface TopicTailOptions {
  readonly transport: Transport
  readonly topic: string
  readonly logger: Logger
  /** How long to wait before the next poll (ms), asked before each wait. */
  intervalMs(): number
  /** The records read, in offset order. */
  onRecords(records: RawRecord[]): void
}

export class TopicTail {
  /** The next offset to read; undefined until started. */
  private position: number | undefined
  private timer: NodeJS.Timeout | undefined
  private due = 0
  private polling: Promise<void> | undefined
  private stopped = false
  private failures = 0

  constructor(private readonly options: TopicTailOptions) {}

  get started(): boolean {
    return this.position !== undefined
  }

  /**
   * Reads the topic from its first record to its end (`'start'`) or only remembers where it ends
   * (`'end'`), then polls. Resolves once that is done: what is written afterwards is read later.
   */
  async start(from: 'start' | 'end'): Promise<void> {
    const { transport, topic } = this.options
    if (from === 'end') {
      this.position = (await transport.admin.endOffsets(topic)).get(0) ?? 0
    } else {
      this.position = (await transport.admin.startOffsets(topic)).get(0) ?? 0
      await this.poll()
    }
    this.schedule()
  }

  /** Polls soon (within `intervalMs()` as it is now) when the next poll is further away. */
  hurry(): void {
    if (this.stopped || this.position === undefined || this.polling) return
    if (this.due - Date.now() > this.options.intervalMs()) this.schedule()
  }

  /** Reads what was written since the last poll. One poll at a time; a failure is logged and retried. */
  poll(): Promise<void> {
    this.polling ??= this.readNew().finally(() => {
      this.polling = undefined
    })
    return this.polling
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  private async readNew(): Promise<void> {
    const { transport, topic } = this.options
    try {
      const end = (await transport.admin.endOffsets(topic)).get(0) ?? 0
      const from = this.position ?? 0
      if (end > from) {
        await transport.read(topic, [{ partition: 0, from, to: end }], (records) => {
          if (!this.stopped) this.options.onRecords(records)
        })
        this.position = end
      } else if (end < from) {
        // The topic was deleted and made again (mephisto reset): start over.
        this.position = end
      }
      this.failures = 0
    } catch (err) {
      // Logged at the 1st, 10th, 100th... failure in a row: a broker away for a while says so once.
      if (++this.failures === 1 || Number.isInteger(Math.log10(this.failures))) {
        this.options.logger.warn(`could not read ${topic}; trying again`, { err, failures: this.failures })
      }
    }
  }

  private schedule(): void {
    clearTimeout(this.timer)
    if (this.stopped) return
    const ms = this.options.intervalMs()
    this.due = Date.now() + ms
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.poll().then(() => this.schedule())
    }, ms)
    this.timer.unref()
  }
}
