import { TestApp } from '@mephisto/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import type { Headers, RawRecord, Sensor, StreamEventInfo } from '../src/index.js'
import { currentStreamEventInfo } from '../src/index.js'
import { quietApp } from './helpers.js'

// The hooks a tracing sensor is built on: the incoming headers in onStreamEventIn, the outgoing
// record's headers in onSendInitiated, and currentStreamEventInfo() to find which event (if any)
// a send belongs to. The sensor here writes, on every record the app sends, the path of hops that
// led to it: a trace context in miniature.

const running: TestApp[] = []
afterEach(async () => {
  for (const t of running.splice(0)) if (t.app.running) await t.stop()
})

/** Per event: the path it came with plus its own hop. Stamps it on what is sent while handling it. */
class PathSensor implements Sensor {
  readonly open = new WeakMap<StreamEventInfo, string>()
  readonly seen: StreamEventInfo[] = []
  ended = 0

  onStreamEventIn(event: StreamEventInfo): unknown {
    this.seen.push(event)
    const from = event.headers?.['x-path']?.toString() ?? '-'
    this.open.set(event, `${from}>${event.stream}@${event.partition}:${event.offset}`)
    return undefined
  }

  onStreamEventOut(event: StreamEventInfo): void {
    this.open.delete(event)
    this.ended++
  }

  onSendInitiated(_topic: string, _bytes: number, headers?: Headers): unknown {
    if (!headers) return undefined
    const event = currentStreamEventInfo()
    const path = event ? this.open.get(event) : 'outside'
    if (path !== undefined) headers['x-path'] = Buffer.from(path)
    return undefined
  }
}

const header = (r: RawRecord, name: string): string | undefined => r.headers[name]?.toString()

describe('sensors on the path of a record: incoming headers, outgoing headers, the current event', () => {
  it('stamps what an agent sends with the event it handles, through sinks and concurrent actors; sends from outside as such', async () => {
    const app = quietApp('path-headers')
    const input = app.topic<string, number>('input', { partitions: 2 })
    const middle = app.topic<string, number>('middle', { partitions: 1 })
    const out = app.topic<string, number>('out', { partitions: 1 })
    app.agent(
      input,
      async (stream) => {
        for await (const n of stream) {
          // Yield to the loop between two sends: the other actor runs meanwhile.
          await middle.send({ key: String(n), value: n })
          await new Promise((r) => setImmediate(r))
          await middle.send({ key: String(n), value: n * 100 })
        }
      },
      { name: 'first', concurrency: 2 },
    )
    app.agent(
      middle,
      async function* (stream) {
        // map() hands on a copy of the event: the sensor still finds the one it was given.
        for await (const n of stream.map((v) => v)) yield n
      },
      { name: 'second', sink: [out] },
    )
    const sensor = new PathSensor()
    app.sensors.add(sensor)
    const t = await TestApp.start(app)
    running.push(t)

    await t.send(input, { key: 'a', value: 1, partition: 0 })
    await t.send(input, { key: 'b', value: 2, partition: 1 })
    await t.settle()

    // Sent from the test, outside any agent.
    expect(t.records('input').map((r) => header(r, 'x-path'))).toEqual(['outside', 'outside'])
    // Each of the four sends carries the event its actor was handling, not the other actor's.
    const middlePaths = t
      .records('middle')
      .map((r) => `${JSON.parse(r.value!.toString())} ${header(r, 'x-path')}`)
      .sort()
    expect(middlePaths).toEqual([
      '1 outside>first@0:0',
      '100 outside>first@0:0',
      '2 outside>first@1:0',
      '200 outside>first@1:0',
    ])
    // The sink's records carry the second agent's event, which carried the first's path.
    const outPaths = t.records('out').map((r) => header(r, 'x-path'))
    const expected = t.records('middle').map((r) => `${header(r, 'x-path')}>second@0:${r.offset}`)
    expect(outPaths.sort()).toEqual(expected.sort())
    // Every event the sensors saw came in with its record's headers, and went out once.
    expect(sensor.seen).toHaveLength(6)
    expect(sensor.ended).toBe(6)
  })

  it('leaves the headers of what groupBy/through forward as they came, and stamps a take() batch with its last event', async () => {
    const app = quietApp('path-forward')
    const input = app.topic<string, number>('input', { partitions: 1 })
    const through = app.topic<string, number>('through', { partitions: 1 })
    const out = app.topic<string, number>('out', { partitions: 1 })
    app.agent(
      input,
      async (stream) => {
        for await (const batch of stream.through(through).take(3, 1000))
          await out.send({ value: batch.reduce((a, b) => a + b, 0) })
      },
      { name: 'batcher' },
    )
    app.sensors.add(new PathSensor())
    const t = await TestApp.start(app)
    running.push(t)

    // Raw records, as a foreign producer would write them: no sensor saw them go out.
    for (const n of [1, 2, 3]) await t.sendRaw('input', { value: String(n), headers: { 'x-path': `p${n}` } })
    await t.settle()

    // Forwarded by through(): each event's own headers, untouched (not stamped 'outside').
    expect(t.records('through').map((r) => header(r, 'x-path'))).toEqual(['p1', 'p2', 'p3'])
    // One batch of three events, read back from `through`: sent while its last one was in hand.
    expect(t.records('out').map((r) => header(r, 'x-path'))).toEqual(['p3>batcher@0:2'])
  })

  it('adds nothing to the headers when no sensor writes them', async () => {
    const app = quietApp('path-none')
    const input = app.topic<string, number>('input', { partitions: 1 })
    const out = app.topic<string, number>('out', { partitions: 1 })
    app.agent(input, async (stream) => {
      for await (const n of stream) await out.send({ value: n, headers: { own: 'yes' } })
    })
    let calls = 0
    app.sensors.add({ onSendInitiated: () => void calls++ })
    const t = await TestApp.start(app)
    running.push(t)
    await t.send(input, { value: 1, headers: { mine: 'kept' } })
    await t.settle()
    expect(t.records('input').map((r) => Object.keys(r.headers))).toEqual([['mine']])
    expect(t.records('out').map((r) => Object.keys(r.headers))).toEqual([['own']])
    expect(calls).toBe(2)
    expect(currentStreamEventInfo()).toBeUndefined()
  })

  it('closes every onStreamEventIn with one onStreamEventOut: a retried event once per attempt', async () => {
    const app = quietApp('path-retry')
    const input = app.topic<string, number>('input', { partitions: 1 })
    let attempts = 0
    app.agent(
      input,
      async (stream) => {
        for await (const _ of stream) if (attempts++ < 2) throw new Error('not yet')
      },
      { name: 'flaky', retries: 3, retryBackoffMs: 1 },
    )
    const log: string[] = []
    app.sensors.add({
      onStreamEventIn: (e) => void log.push(`in ${e.offset}`),
      onStreamEventOut: (e) => void log.push(`out ${e.offset}`),
    })
    const t = await TestApp.start(app)
    running.push(t)
    await t.send(input, { value: 1 })
    // The backoff runs on real timers: wait for the third attempt, then for the agent to be idle.
    for (let i = 0; i < 200 && attempts < 3; i++) await new Promise((r) => setTimeout(r, 5))
    await t.settle()
    expect(attempts).toBe(3)
    expect(log).toEqual(['in 0', 'out 0', 'in 0', 'out 0', 'in 0', 'out 0'])
    expect(app.monitor.snapshot().events.active).toBe(0)
  })
})
