import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { KAFKAJS_VERSION, standaloneCluster } from './kafkajsPatches.js'

const installed: string = createRequire(import.meta.url)('kafkajs/package.json').version

describe('kafkajs patches', () => {
  it('were written against the installed kafkajs', () => {
    expect(
      installed,
      `kafkajs is now ${installed}, but the patches in kafkajsPatches.ts were written against ` +
        `${KAFKAJS_VERSION}. Re-check each patch there against the new kafkajs source (its "Still ` +
        'needed" paragraph says what to look for), remove those kafkajs made unnecessary, then set ' +
        'KAFKAJS_VERSION to the new version.',
    ).toBe(KAFKAJS_VERSION)
  })

  it('reach a cluster whose internals they wrap', () => {
    // No broker needed: kafka.consumer() hands the assigner its cluster without connecting.
    const kafka = new kafkajs.Kafka({ brokers: ['127.0.0.1:9'], logLevel: kafkajs.logLevel.NOTHING })
    const cluster = standaloneCluster(kafka)
    expect(typeof cluster.findGroupCoordinator).toBe('function')
    expect(typeof cluster.findBroker).toBe('function')
  })
})
