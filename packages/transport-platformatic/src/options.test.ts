import { ConfigurationError } from '@mephisto/core'
import { describe, expect, it } from 'vitest'
import { defaultRetryDelay, resolveSettings } from './options.js'

const id = () => 'host-w0'

describe('platformatic options', () => {
  it('default every setting, with static membership on', () => {
    const s = resolveSettings('app', undefined, undefined, id)
    expect(s.client).toMatchObject({ clientId: 'app', connectTimeout: 5000 })
    expect(s.consumer).toMatchObject({
      groupInstanceId: 'host-w0',
      sessionTimeout: 30_000,
      rebalanceTimeout: 60_000,
      heartbeatInterval: 3000,
      maxWaitTime: 500,
    })
    expect(s.producer).toEqual({ acks: -1, compression: undefined })
    // Retries wait 50 ms, doubling up to 1 s; a given retryDelay wins.
    expect(s.client.retries).toBe(5)
    expect(s.client.retryDelay).toBe(defaultRetryDelay)
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => defaultRetryDelay(null, 'listOffsets', n))).toEqual([
      50, 100, 200, 400, 800, 1000, 1000,
    ])
    expect(resolveSettings('app', { client: { retryDelay: 300 } }, undefined, id).client.retryDelay).toBe(300)
  })

  it("carry over what the app's kafkajs options share with this client; platformatic's own win", () => {
    const kafka = {
      client: {
        sasl: { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
        ssl: true,
        requestTimeout: 9000,
      },
      consumer: { sessionTimeout: 12_000, heartbeatInterval: 400, maxWaitTimeInMs: 250 },
    }
    const s = resolveSettings('app', { consumer: { sessionTimeout: 20_000 } }, kafka, id)
    expect(s.client.sasl).toEqual({ mechanism: 'SCRAM-SHA-256', username: 'u', password: 'p' })
    expect(s.client.tls).toEqual({})
    expect(s.client.requestTimeout).toBe(9000)
    expect(s.consumer).toMatchObject({ sessionTimeout: 20_000, heartbeatInterval: 400, maxWaitTime: 250 })
  })

  it('turn static membership off with groupInstanceId: false, or take the given id', () => {
    expect(
      resolveSettings('a', { consumer: { groupInstanceId: false } }, undefined, id).consumer.groupInstanceId,
    ).toBe(undefined)
    expect(
      resolveSettings('a', { consumer: { groupInstanceId: 'w1' } }, undefined, id).consumer.groupInstanceId,
    ).toBe('w1')
  })

  it('refuse what cannot work, naming the option', () => {
    const bad = (p: object, kafka?: object) => () => resolveSettings('a', p, kafka as never, id)
    expect(bad({ consumr: {} })).toThrow(/unknown option "consumr"/)
    expect(bad({ consumer: { sessionTimout: 1 } })).toThrow(
      /platformatic.consumer: unknown option "sessionTimout"/,
    )
    expect(bad({ consumer: { sessionTimeout: -1 } })).toThrow(
      /consumer.sessionTimeout must be a whole number/,
    )
    expect(bad({ consumer: { heartbeatInterval: 5000, sessionTimeout: 4000 } })).toThrow(
      /less than sessionTimeout/,
    )
    expect(bad({ producer: { acks: 2 } })).toThrow(/acks must be -1, 0 or 1/)
    expect(bad({ consumer: { groupInstanceId: 'a b' } })).toThrow(ConfigurationError)
    expect(bad({}, { client: { sasl: { mechanism: 'aws' } } })).toThrow(/set platformatic.client.sasl/)
  })
})
