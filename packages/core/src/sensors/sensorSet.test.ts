import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Sensor, StreamEventInfo } from './sensor.js'
import { HOOK_NAMES, hookShape } from './sensorHooks.js'
import { type SensorErrorHandler, type SensorHook, SensorSet } from './sensorSet.js'

const tp = { topic: 'hits', partition: 0 }
const event: StreamEventInfo = { stream: 'count', topic: 'hits', partition: 0, offset: 7 }

function collect(): { errors: [unknown, Sensor, SensorHook][]; onSensorError: SensorErrorHandler } {
  const errors: [unknown, Sensor, SensorHook][] = []
  return { errors, onSensorError: (error, sensor, hook) => void errors.push([error, sensor, hook]) }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('SensorSet', () => {
  it('fans a hook out to every sensor that implements it, in the order added', () => {
    const calls: string[] = []
    const a: Sensor = { onMessageIn: (t, offset, bytes) => calls.push(`a ${t.topic} ${offset} ${bytes}`) }
    const b: Sensor = { onTableGet: () => calls.push('b get') }
    const c: Sensor = {
      onMessageIn: () => calls.push('c'),
      onTableGet: (table) => calls.push(`c get ${table}`),
    }
    const set = new SensorSet({ sensors: [a, b] }).add(c)

    set.onMessageIn(tp, 3, 100)
    set.onTableGet('counts', 'k')

    expect(calls).toEqual(['a hits 3 100', 'c', 'b get', 'c get counts'])
  })

  it('is iterable and supports add, remove and has', () => {
    const a: Sensor = {}
    const b: Sensor = {}
    const set = new SensorSet()
    set.add(a).add(b).add(a)
    expect([...set]).toEqual([a, b])
    expect(set.size).toBe(2)
    expect(set.remove(a)).toBe(true)
    expect(set.remove(a)).toBe(false)
    expect(set.has(a)).toBe(false)
    expect([...set]).toEqual([b])
  })

  it('stops calling a removed sensor', () => {
    const onMessageIn = vi.fn()
    const sensor: Sensor = { onMessageIn }
    const set = new SensorSet({ sensors: [sensor] })
    set.remove(sensor)
    set.onMessageIn(tp, 0, 1)
    expect(onMessageIn).not.toHaveBeenCalled()
  })

  it('calls class-based sensors with `this` bound', () => {
    class Counter implements Sensor {
      gets = 0
      onTableGet(): void {
        this.gets++
      }
    }
    const counter = new Counter()
    const set = new SensorSet({ sensors: [counter] })
    set.onTableGet('t', 1)
    set.onTableGet('t', 2)
    expect(counter.gets).toBe(2)
  })

  it('isolates a throwing sensor: the others still run and the error is reported with sensor and hook', () => {
    const { errors, onSensorError } = collect()
    const boom = new Error('boom')
    const bad: Sensor = {
      onMessageIn: () => {
        throw boom
      },
    }
    const good = vi.fn()
    const set = new SensorSet({ sensors: [bad, { onMessageIn: good }], onSensorError })

    expect(() => set.onMessageIn(tp, 1, 1)).not.toThrow()
    set.onMessageIn(tp, 2, 1)

    expect(good).toHaveBeenCalledTimes(2)
    expect(errors).toEqual([
      [boom, bad, 'onMessageIn'],
      [boom, bad, 'onMessageIn'],
    ])
  })

  it('by default warns once per sensor and hook', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const bad: Sensor = {
      onTableGet: () => {
        throw new Error('get')
      },
      onTableSet: () => {
        throw new Error('set')
      },
    }
    const set = new SensorSet({ sensors: [bad] })
    for (let i = 0; i < 5; i++) {
      set.onTableGet('t', i)
      set.onTableSet('t', i, i)
    }
    expect(warn).toHaveBeenCalledTimes(2)
    expect(String(warn.mock.calls[0]?.[0])).toContain('onTableGet')
    expect(String(warn.mock.calls[1]?.[0])).toContain('onTableSet')
  })

  it('survives an error handler that throws', () => {
    const set = new SensorSet({
      sensors: [
        {
          onSkip: () => {
            throw new Error('sensor')
          },
        },
      ],
      onSensorError: () => {
        throw new Error('handler')
      },
    })
    expect(() => set.onSkip('count', new Error('x'))).not.toThrow()
  })

  it('hands each sensor back its own state on the paired hooks', () => {
    const seen: [string, unknown][] = []
    const a: Sensor = {
      onStreamEventIn: () => 'state-a',
      onStreamEventOut: (_e, state) => seen.push(['a', state]),
    }
    const b: Sensor = {
      onStreamEventIn: (e) => ({ offset: e.offset }),
      onStreamEventOut: (_e, state) => seen.push(['b', state]),
    }
    const set = new SensorSet({ sensors: [a, b] })

    const states = set.onStreamEventIn(event)
    set.onStreamEventOut(event, states)

    expect(seen).toEqual([
      ['a', 'state-a'],
      ['b', { offset: 7 }],
    ])
  })

  it('pairs states for commit, send (completed and error), assignment and rebalance', () => {
    const seen: string[] = []
    const sensor: Sensor = {
      onCommitInitiated: () => 'c',
      onCommitCompleted: (s, offsets) => seen.push(`commit ${s} ${offsets.length}`),
      onSendInitiated: (topic) => `s-${topic}`,
      onSendCompleted: (s, topic) => seen.push(`sent ${s} ${topic}`),
      onSendError: (s, topic, e) => seen.push(`send error ${s} ${topic} ${(e as Error).message}`),
      onAssignmentStart: (ps) => ps.length,
      onAssignmentCompleted: (s) => seen.push(`assigned ${s}`),
      onAssignmentError: (s, e) => seen.push(`assign error ${s} ${(e as Error).message}`),
      onRebalanceStart: () => 'r',
      onRebalanceEnd: (s) => seen.push(`rebalanced ${s}`),
    }
    const set = new SensorSet({ sensors: [sensor] })

    set.onCommitCompleted(set.onCommitInitiated(), [{ ...tp, offset: 1 }])
    set.onSendCompleted(set.onSendInitiated('out', 10), 'out')
    set.onSendError(set.onSendInitiated('out', 10), 'out', new Error('nope'))
    set.onAssignmentCompleted(set.onAssignmentStart([tp, tp]), [tp, tp])
    set.onAssignmentError(set.onAssignmentStart([tp]), new Error('bad'))
    set.onRebalanceEnd(set.onRebalanceStart([tp]))

    expect(seen).toEqual([
      'commit c 1',
      'sent s-out out',
      'send error s-out out nope',
      'assigned 2',
      'assign error 1 bad',
      'rebalanced r',
    ])
  })

  it("hands every sensor the outgoing record's headers on onSendInitiated, each seeing what the ones before added", () => {
    const seen: string[] = []
    const tracer: Sensor = {
      onSendInitiated: (_topic, _bytes, headers) => {
        if (headers) headers.traceparent = Buffer.from('00-abc')
      },
    }
    const reader: Sensor = {
      onSendInitiated: (topic, bytes, headers) =>
        void seen.push(`${topic} ${bytes} ${headers ? Object.keys(headers).join(',') : 'none'}`),
    }
    const set = new SensorSet({ sensors: [tracer, reader] })
    const headers: Record<string, Buffer> = { own: Buffer.from('x') }
    set.onSendInitiated('out', 3, headers)
    set.onSendInitiated('out', 4)
    expect(headers.traceparent?.toString()).toBe('00-abc')
    expect(seen).toEqual(['out 3 own,traceparent', 'out 4 none'])
  })

  it('calls a closing hook with undefined state on a sensor that has no opening hook', () => {
    const out = vi.fn()
    const set = new SensorSet({ sensors: [{ onStreamEventIn: () => 1 }, { onStreamEventOut: out }] })
    set.onStreamEventOut(event, set.onStreamEventIn(event))
    expect(out).toHaveBeenCalledTimes(1)
    expect(out).toHaveBeenCalledWith(event, undefined)
  })

  it('still closes a measurement for a sensor whose opening hook threw, with undefined state', () => {
    const { errors, onSensorError } = collect()
    const out = vi.fn()
    const sensor: Sensor = {
      onSendInitiated: () => {
        throw new Error('in')
      },
      onSendCompleted: out,
    }
    const set = new SensorSet({ sensors: [sensor], onSensorError })
    set.onSendCompleted(set.onSendInitiated('t', 1), 't')
    expect(out).toHaveBeenCalledWith(undefined, 't')
    expect(errors.map(([, , hook]) => hook)).toEqual(['onSendInitiated'])
  })

  it('keeps states matched to sensors when the set changes between the paired hooks', () => {
    const seen: [string, unknown][] = []
    const make = (name: string): Sensor => ({
      onStreamEventIn: () => name,
      onStreamEventOut: (_e, state) => seen.push([name, state]),
    })
    const a = make('a')
    const b = make('b')
    const set = new SensorSet({ sensors: [a] })

    const states = set.onStreamEventIn(event)
    set.add(b)
    set.remove(a)
    set.onStreamEventOut(event, states)

    // `a` started this event and is told it ended; `b` never saw it start.
    expect(seen).toEqual([['a', 'a']])
  })

  it('allocates nothing for a paired hook no sensor implements', () => {
    const set = new SensorSet({ sensors: [{ onMessageIn: () => {} }] })
    const first = set.onStreamEventIn(event)
    expect(first).toHaveLength(0)
    expect(set.onStreamEventIn(event)).toBe(first)
    expect(() => set.onStreamEventOut(event, first)).not.toThrow()
  })

  it('nests: a SensorSet is itself a sensor', () => {
    const seen: unknown[] = []
    const inner = new SensorSet({
      sensors: [{ onCommitInitiated: () => 'inner', onCommitCompleted: (s) => seen.push(s) }],
    })
    const outer = new SensorSet({ sensors: [inner] })
    outer.onCommitCompleted(outer.onCommitInitiated(), [])
    expect(seen).toEqual(['inner'])
  })

  it('routes each hook to the sensor hook of the same name', () => {
    const calls: string[] = []
    const hooks: SensorHook[] = [
      'onMessageIn',
      'onStreamEventIn',
      'onStreamEventOut',
      'onMessageOut',
      'onTableGet',
      'onTableSet',
      'onTableDelete',
      'onCommitInitiated',
      'onCommitCompleted',
      'onSendInitiated',
      'onSendCompleted',
      'onSendError',
      'onAssignmentStart',
      'onAssignmentCompleted',
      'onAssignmentError',
      'onRebalanceStart',
      'onRebalanceEnd',
      'onWebRequest',
      'onDlq',
      'onSkip',
      'onRecoveryProgress',
      'onOffsets',
      'onLateEvent',
    ]
    const sensor = Object.fromEntries(hooks.map((hook) => [hook, () => calls.push(hook)])) as Sensor
    const set = new SensorSet({ sensors: [sensor] })

    set.onMessageIn(tp, 0, 1)
    set.onStreamEventOut(event, set.onStreamEventIn(event))
    set.onMessageOut(tp, 0)
    set.onTableGet('t', 1)
    set.onTableSet('t', 1, 2)
    set.onTableDelete('t', 1)
    set.onCommitCompleted(set.onCommitInitiated(), [])
    const send = set.onSendInitiated('t', 1)
    set.onSendCompleted(send, 't')
    set.onSendError(send, 't', new Error('x'))
    const assignment = set.onAssignmentStart([tp])
    set.onAssignmentCompleted(assignment, [tp])
    set.onAssignmentError(assignment, new Error('x'))
    set.onRebalanceEnd(set.onRebalanceStart([tp]))
    set.onWebRequest('GET', '/stats', 200, 1)
    set.onDlq({ ...tp, offset: 1 }, 'dlq', 'decode')
    set.onSkip('count', new Error('x'))
    set.onRecoveryProgress('t', 0, 1, 2)
    set.onOffsets(tp, { end: 3 })
    set.onLateEvent('t')

    expect(calls).toEqual(hooks)
  })

  it('calls every hook of the hook list with exactly its arguments, and a closing hook with its state', () => {
    const calls: [string, unknown[]][] = []
    const sensor = Object.fromEntries(
      HOOK_NAMES.map((hook) => [
        hook,
        (...args: unknown[]) => {
          calls.push([hook, args])
          return `${hook} state`
        },
      ]),
    ) as Sensor
    const set = new SensorSet({ sensors: [sensor] }) as unknown as Record<
      SensorHook,
      (...args: unknown[]) => unknown
    >
    const expected: [string, unknown[]][] = []
    for (const hook of HOOK_NAMES) {
      const { params, closes, stateAt } = hookShape(hook)
      const args = Array.from({ length: params }, (_, i) => `${hook} ${i}`)
      if (closes === undefined || stateAt === undefined) {
        set[hook](...args)
        expected.push([hook, args])
        continue
      }
      const opening = Array.from({ length: hookShape(closes).params }, (_, i) => `${closes} ${i}`)
      const states = set[closes](...opening)
      set[hook](...args.map((arg, i) => (i === stateAt ? states : arg)))
      expected.push(
        [closes, opening],
        [hook, args.map((arg, i) => (i === stateAt ? `${closes} state` : arg))],
      )
    }
    expect(calls).toEqual(expected)
    expect(calls.filter(([hook]) => hook === 'onWorkerRestart')).toHaveLength(1)
  })
})
