/**
 * What the window tests share (streamTime, sessionWindows, slidingWindows): the test app of each
 * test, stopped after it; an app whose table records every window it closes, with what the tests
 * read of it and the run across a crash the exactly-once tests send their events through; events
 * out of order in blocks. The scenarios and what they expect stay in each test.
 */
import type { TestAppOptions } from '@mephisto/testkit'
import { TestApp } from '@mephisto/testkit'
import { afterEach } from 'vitest'
import type { App, LateEventPolicy, Table, Topic, Window } from '../src/index.js'
import { quietApp } from './helpers.js'

/** The test apps of one test file: each test starts its own, and it is stopped after the test. */
export interface TestApps {
  start(app: App, options?: TestAppOptions): Promise<TestApp>
  /** The app the running test started (for fixtures that send on its behalf). */
  readonly current: TestApp
}

/** Call at the top of a test file: registers the `afterEach` that stops the test's app. */
export function testApps(): TestApps {
  let running: TestApp | undefined
  afterEach(async () => {
    await running?.stop()
    running = undefined
  })
  return {
    async start(app, options) {
      running = await TestApp.start(app, options)
      return running
    },
    get current() {
      if (!running) throw new Error('no test app is running: start one first')
      return running
    },
  }
}

/** A window as `onWindowClose` reported it: `[key, window, value]`. */
export type Closed<V> = [string, Window, V]

/** What a window test varies: the app's partitions and guarantee, the view's window options. */
export interface WindowTestOptions {
  partitions?: number
  guarantee?: 'exactly_once'
  graceMs?: number
  idleMs?: number
  lateEvents?: LateEventPolicy
}

export interface ReportingTable<T, V> {
  app: App
  topic: Topic<string, T>
  table: Table<string, V>
  /** Every window the table closed, in the order it reported them. */
  closed: Closed<V>[]
  /** The late events the monitor counted for the table. */
  lateEvents(): number
  /** Sends `value` with `key` to the topic (to `partition` when given) through the test's app. */
  send(key: string, value: T, partition?: number): Promise<void>
  /** Each window closed so far as `key start-end value` (the value as JSON), in the order reported. */
  reported(): string[]
  /**
   * Sends `events` with `send` across a crash, settling after each part: the first `commitAt` and
   * a commit; then up to `crashAt`, processed but not committed; a crash and a restart; then the
   * rest. Returns how many windows had closed before the crash.
   */
  sendAcrossCrash<E extends unknown[]>(
    events: readonly E[],
    send: (...event: E) => Promise<void>,
    cuts: { commitAt: number; crashAt: number },
  ): Promise<number>
}

/**
 * An app that logs nothing, with one topic and one table of `options.partitions` each (default
 * 1), whose table records every window it closes; under exactly-once when `options.guarantee`
 * says so. The test makes the windowed view and the agent.
 */
export function reportingTable<T, V>(
  apps: TestApps,
  names: { app: string; topic: string; table: string },
  defaultValue: () => V,
  options: WindowTestOptions,
): ReportingTable<T, V> {
  const partitions = options.partitions ?? 1
  const app = quietApp(names.app, options.guarantee ? { processingGuarantee: options.guarantee } : {})
  const topic = app.topic<string, T>(names.topic, { partitions })
  const closed: Closed<V>[] = []
  const table = app.table<string, V>(names.table, {
    default: defaultValue,
    partitions,
    onWindowClose: (key, window, value) => {
      closed.push([key, window, value])
    },
  })
  return {
    app,
    topic,
    table,
    closed,
    lateEvents: () => app.monitor.snapshot().tables[names.table]?.lateEvents ?? 0,
    send: async (key, value, partition) => {
      await apps.current.send(topic, { key, value, ...(partition !== undefined && { partition }) })
    },
    reported: () => closed.map(([key, w, value]) => `${key} ${w.start}-${w.end} ${JSON.stringify(value)}`),
    sendAcrossCrash: async (events, send, cuts) => {
      const t = apps.current
      for (const e of events.slice(0, cuts.commitAt)) await send(...e)
      await t.settle()
      await t.commit()
      for (const e of events.slice(cuts.commitAt, cuts.crashAt)) await send(...e)
      await t.settle()
      const beforeCrash = closed.length
      await t.crash()
      await t.restart()
      for (const e of events.slice(cuts.crashAt)) await send(...e)
      await t.settle()
      return beforeCrash
    },
  }
}

/** `[start, end, value]` of each window stored for `key`, oldest first. */
export async function windowsOf<V>(
  view: { items(key: string): Promise<[Window, V][]> },
  key: string,
): Promise<[number, number, V][]> {
  return (await view.items(key)).map(([w, value]) => [w.start, w.end, value])
}

/** `events` with each block of `size` reversed: out of order by up to `size - 1` places. */
export function reversedBlocks<E>(events: readonly E[], size: number): E[] {
  const out: E[] = []
  for (let i = 0; i < events.length; i += size) out.push(...events.slice(i, i + size).reverse())
  return out
}
