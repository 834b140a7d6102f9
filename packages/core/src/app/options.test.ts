import { describe, expect, it } from 'vitest'
import { ConfigurationError } from '../base/errors.js'
import { App } from './app.js'
import { DEFAULTS, resolveAppOptions } from './options.js'
import { RestartPolicy } from './restartPolicy.js'

describe('app options', () => {
  it('fills in every default once', () => {
    const s = resolveAppOptions({ id: 'a' })
    expect(s).toMatchObject({
      broker: 'memory://',
      store: 'memory://',
      processingGuarantee: 'at_least_once',
      commitIntervalMs: DEFAULTS.commitIntervalMs,
      commitEvery: 10_000,
      topicPartitions: 8,
      maxBufferedEvents: 1000,
      drainTimeoutMs: 30_000,
      autoOffsetReset: 'earliest',
      standbyIntervalMs: 1000,
    })
    expect(new App({ id: 'a', logger: 'silent' }).settings.commitIntervalMs).toBe(2800)
  })

  it('keeps what was given', () => {
    const s = resolveAppOptions({ id: 'a', commitEvery: 5, drainTimeoutMs: 0, autoOffsetReset: 'latest' })
    expect(s).toMatchObject({ commitEvery: 5, drainTimeoutMs: 0, autoOffsetReset: 'latest' })
  })

  it('refuses an unknown option by name (a typo is not silently ignored)', () => {
    expect(() => new App({ id: 'a', commitIntervalMS: 100 } as never)).toThrow(ConfigurationError)
    expect(() => new App({ id: 'a', commitIntervalMS: 100 } as never)).toThrow(
      /unknown option "commitIntervalMS"/,
    )
  })

  it('refuses a write to the options after construction, which would otherwise be silently ignored', () => {
    const app = new App({ id: 'a', logger: 'silent' })
    expect(() => Object.assign(app.options, { web: false })).toThrow(TypeError)
  })

  it('names the option whose value is wrong', () => {
    expect(() => resolveAppOptions({ id: 'a', topicReplicas: 0 })).toThrow(
      /topicReplicas must be a positive integer/,
    )
    expect(() => resolveAppOptions({ id: 'a', standbyIntervalMs: 1.5 })).toThrow(/standbyIntervalMs/)
    expect(() => resolveAppOptions({ id: 'a', drainTimeoutMs: -1 })).toThrow(/drainTimeoutMs/)
    expect(() => resolveAppOptions({ id: 'a', autoOffsetReset: 'first' as never })).toThrow(/autoOffsetReset/)
    expect(() => resolveAppOptions({ id: 'a', transport: 42 as never })).toThrow(
      /transport must be a client name .* or a function/,
    )
    expect(() => resolveAppOptions({ id: 'no spaces' })).toThrow(/App needs an id/)
  })
})

describe('restart policy', () => {
  it('backs off from 0.25 s doubling to 30 s and gives up past 10 restarts in 5 minutes', () => {
    const policy = new RestartPolicy()
    const backoffs = Array.from({ length: 11 }, (_, i) => policy.next(i * 1000))
    expect(backoffs.map((b) => b.backoffMs)).toEqual([
      250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000,
    ])
    expect(backoffs.slice(0, 10).every((b) => !b.giveUp)).toBe(true)
    expect(backoffs[10]!.giveUp).toBe(true)
    // Five minutes later the count starts over.
    expect(policy.next(10_000 + 5 * 60_000)).toMatchObject({ count: 1, backoffMs: 250, giveUp: false })
  })
})
