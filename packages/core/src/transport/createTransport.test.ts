import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../app/app.js'
import { ConfigurationError } from '../base/errors.js'
import { createTransport, parseKafkaBrokers, registerTransport } from './createTransport.js'
import { KafkaTransport } from './kafka/kafkaTransport.js'
import { MemoryTransport } from './memory/memoryTransport.js'
import type { Transport } from './transport.js'

/** A registered client's factory: records what it was made from and hands back a memory transport. */
function recording(made: { broker: string | string[]; client?: string }[]) {
  return (broker: string | string[], options: { client?: string }): Transport => {
    made.push({ broker, client: options.client })
    return createTransport('memory://registry-test', { id: 'x' })
  }
}

describe('createTransport: choosing the Kafka client', () => {
  const saved = process.env.MEPHISTO_TRANSPORT
  afterEach(() => {
    if (saved === undefined) delete process.env.MEPHISTO_TRANSPORT
    else process.env.MEPHISTO_TRANSPORT = saved
  })

  it('memory:// is the memory broker and a host list is kafkajs, by default', () => {
    expect(createTransport('memory://', { id: 'x' })).toBeInstanceOf(MemoryTransport)
    expect(createTransport('127.0.0.1:9092', { id: 'x', logger: 'silent' })).toBeInstanceOf(KafkaTransport)
    expect(createTransport('kafka://127.0.0.1:9092', { id: 'x', logger: 'silent' })).toBeInstanceOf(
      KafkaTransport,
    )
  })

  it('a registered client is chosen by name, by URL scheme, and by MEPHISTO_TRANSPORT through the app', () => {
    const made: { broker: string | string[]; client?: string }[] = []
    registerTransport('recording', recording(made))
    createTransport('127.0.0.1:9092', { id: 'x', client: 'recording' })
    createTransport('recording://127.0.0.1:9092', { id: 'x' })
    process.env.MEPHISTO_TRANSPORT = 'recording'
    new App({ id: 'chosen', broker: '127.0.0.1:9092', logger: 'silent' }).createTransport()
    // An explicit option wins over the environment.
    const own = new App({ id: 'own', broker: '127.0.0.1:9092', logger: 'silent', transport: 'kafkajs' })
    expect(own.createTransport()).toBeInstanceOf(KafkaTransport)
    expect(made.map((m) => m.broker)).toEqual([
      '127.0.0.1:9092',
      'recording://127.0.0.1:9092',
      '127.0.0.1:9092',
    ])
    // The scheme names the client, not part of the address.
    expect(parseKafkaBrokers('recording://h1:9092,h2:9093')).toEqual(['h1:9092', 'h2:9093'])
  })

  it('an unknown client is a configuration error that says how to get it', () => {
    expect(() => createTransport('127.0.0.1:9092', { id: 'x', client: 'nope' })).toThrow(ConfigurationError)
    expect(() => createTransport('nope://127.0.0.1:9092', { id: 'x' })).toThrow(/@mephisto\/transport-nope/)
    expect(() => registerTransport('kafkajs', recording([]))).toThrow(ConfigurationError)
  })
})
