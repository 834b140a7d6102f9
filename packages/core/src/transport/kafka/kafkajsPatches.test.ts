import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import { describe, expect, it, vi } from 'vitest'
import type { RequestQueueInternals } from './kafkajsPatches.js'
import {
  KAFKAJS_VERSION,
  noTimerForEmptyQueue,
  requestQueueClass,
  standaloneCluster,
  unpatchedScheduleCheck,
} from './kafkajsPatches.js'

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

describe('kafkajs request queues (patch 4)', () => {
  const newQueue = (): RequestQueueInternals => {
    const Queue = requestQueueClass()
    const quiet = { debug() {}, info() {}, warn() {}, error() {} }
    return new Queue({
      instrumentationEmitter: null,
      maxInFlightRequests: null,
      requestTimeout: 30_000,
      enforceRequestTimeout: false,
      clientId: 'patch-test',
      broker: '127.0.0.1:9',
      logger: { namespace: () => quiet, ...quiet },
      isConnected: () => true,
    })
  }

  /** The names of the process warnings emitted while `fn` runs and shortly after. */
  async function warningsOf(fn: () => void): Promise<string[]> {
    const names: string[] = []
    const listen = (w: Error): void => void names.push(w.name)
    process.on('warning', listen)
    try {
      fn()
      // Warnings are emitted on the next tick; let a 1 ms timer run too.
      await new Promise((r) => setTimeout(r, 30))
    } finally {
      process.off('warning', listen)
    }
    return names
  }

  it("are still kafkajs' own: unpatched, an idle queue sets a timer with a negative delay", () => {
    const delays: number[] = []
    const queue = newQueue()
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((_fn: () => void, ms?: number) => {
      delays.push(ms ?? 0)
      return 0 as unknown as ReturnType<typeof setTimeout>
    }) as typeof setTimeout)
    try {
      unpatchedScheduleCheck().call(queue)
    } finally {
      spy.mockRestore()
    }
    expect(delays).toHaveLength(1)
    expect(delays[0]).toBeLessThan(0)
  })

  it('set no timer when nothing is pending: no TimeoutNegativeWarning, other warnings still shown', async () => {
    const queue = newQueue()
    try {
      const names = await warningsOf(() => {
        // What kafkajs runs after every response: check the queue, schedule the next check.
        queue.checkPendingRequests()
        process.emitWarning('another warning')
      })
      expect(queue.throttleCheckTimeoutId).toBeNull()
      expect(names).not.toContain('TimeoutNegativeWarning')
      expect(names).toContain('Warning')
    } finally {
      queue.destroy()
    }
  })

  it('still schedule the check when a request is pending', () => {
    const queue = newQueue()
    try {
      queue.pending.push({})
      queue.scheduleCheckPendingRequests()
      expect(queue.throttleCheckTimeoutId).not.toBeNull()
    } finally {
      queue.pending.length = 0
      queue.destroy()
    }
  })

  it('is installed once: loading the module again does not wrap twice', () => {
    noTimerForEmptyQueue()
    const schedule = requestQueueClass().prototype.scheduleCheckPendingRequests
    noTimerForEmptyQueue()
    expect(requestQueueClass().prototype.scheduleCheckPendingRequests).toBe(schedule)
  })
})
