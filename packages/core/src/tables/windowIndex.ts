/**
 * The key index of a view whose windows the events define (session, sliding): per key, what the
 * view must know to find that key's windows without reading the whole partition (a store has no
 * range reads). It lives in a companion table `<table>-window-index`, in the table's store with its
 * own changelog, written in the same event as the windows it describes, so it commits and recovers
 * with them. This file reads and writes index records; what they hold is each view's.
 */
import type { TableState } from './tableState.js'

/** The companion table as this file uses it. `Table` implements it. */
export interface WindowIndexTable<R> {
  state(): TableState<string, R>
}

export class WindowIndex<R> {
  constructor(private readonly companion: WindowIndexTable<R>) {}

  /** The record of the key stored as `sk` in `partition`, or undefined. */
  read(partition: number, sk: string): Promise<R | undefined> {
    return this.companion.state().read(partition, sk)
  }

  /** Stores the key's record; undefined removes it. */
  write(partition: number, sk: string, record: R | undefined): void {
    this.companion.state().write(partition, sk, record)
  }

  /** Every key's record in `partition`, as `[sk, record]`. */
  entries(partition: number): AsyncIterable<[string, R]> {
    return this.companion.state().entries(partition)
  }
}
