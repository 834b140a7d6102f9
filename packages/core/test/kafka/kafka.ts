import { randomUUID } from 'node:crypto'
import { afterAll, describe, inject } from 'vitest'
import { consoleLogger } from '../../src/base/logger.js'
import { KafkaTransport } from '../../src/index.js'
import type { KafkaTransportOptions } from '../../src/transport/kafka/kafkaTransport.js'

/** The test broker's bootstrap list (from globalSetup), or '' when there is none. */
export function kafkaBrokers(): string {
  return inject('kafkaBrokers')
}

/** The SASL_PLAINTEXT listener of the test broker, or '' when it has none. */
export function kafkaSaslBrokers(): string {
  return inject('kafkaSaslBrokers')
}

/** The docker/kafka-local state dir of the test broker, for stopping and restarting it ('' if none). */
export function kafkaLocalDir(): string {
  return inject('kafkaLocalDir')
}

export function kafkaAvailable(): boolean {
  return kafkaBrokers() !== ''
}

/** `describe` when a broker is available, `describe.skip` otherwise (globalSetup warned). */
export const describeKafka: typeof describe = (kafkaAvailable() ? describe : describe.skip) as typeof describe

/** A topic or group name no other test (or earlier run against the same broker) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}

/**
 * A transport on the test broker, tuned for tests: short heartbeats so rebalances are noticed
 * within a second rather than three, and kafkajs logging only errors.
 */
export function testTransport(options: KafkaTransportOptions = {}): KafkaTransport {
  const kafka = options.kafka ?? {}
  return new KafkaTransport(kafkaBrokers().split(','), {
    logger: consoleLogger('error', 'kafka-test'),
    ...options,
    kafka: {
      ...kafka,
      consumer: { heartbeatInterval: 300, sessionTimeout: 10_000, maxWaitTimeInMs: 200, ...kafka.consumer },
    },
  })
}

/**
 * The app ids a test file creates topics for; after the file's tests, every topic named
 * `<id>-...` of them is deleted from the test broker.
 */
export function topicsDeletedAfterAll(): string[] {
  const created: string[] = []
  afterAll(async () => {
    if (created.length === 0) return
    const t = testTransport()
    await t.connect()
    const all = await t.admin.listTopics()
    await t.admin.deleteTopics(all.filter((name) => created.some((id) => name.startsWith(`${id}-`))))
    await t.close()
  })
  return created
}

/**
 * Calls `fn` every 200 ms until `ok` holds for what it returns (an error counts as not yet),
 * or fails after `timeoutMs` with the last answer.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch((err: unknown) => err as T)
    if (!(v instanceof Error) && ok(v)) return v
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last: ${v instanceof Error ? v.message : JSON.stringify(v)}`,
      )
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** A worker's web answer: status, body (JSON when it parses) and the worker that answered. */
export interface Answer {
  status: number
  body: any
  worker: string | null
}

export async function getAnswer(url: string, timeoutMs: number): Promise<Answer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, body, worker: res.headers.get('x-mephisto-worker') }
}
