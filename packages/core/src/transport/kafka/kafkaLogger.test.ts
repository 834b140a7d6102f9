import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import type { Logger } from '../../base/logger.js'
import { kafkaLogCreator } from './kafkaLogger.js'

const { logLevel } = kafkajs

/** A logger that records `level message` lines. */
function recorder(): { logger: Logger; lines: string[] } {
  const lines: string[] = []
  const at =
    (level: string) =>
    (msg: string): void =>
      void lines.push(`${level} ${msg}`)
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines }
}

/** What kafkajs logs for one failed attempt to reach the seed broker, then a routine warning. */
function logAttempt(log: ReturnType<ReturnType<typeof kafkaLogCreator>>, attempt: number): void {
  const entry = (namespace: string, level: number, message: string, extra: object) =>
    log({
      namespace,
      level,
      label: '',
      log: { timestamp: '', logger: 'kafkajs', message, ...extra },
    } as Parameters<typeof log>[0])
  entry('Connection', logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:1', {
    broker: '127.0.0.1:1',
    clientId: 'app',
    stack: 'Error: connect ECONNREFUSED 127.0.0.1:1\n    at TCPConnectWrap.afterConnect',
  })
  entry(
    'BrokerPool',
    logLevel.ERROR,
    'Failed to connect to seed broker, trying another broker from the list: Connection error: connect ECONNREFUSED 127.0.0.1:1',
    { retryCount: attempt - 1, retryTime: 300 },
  )
  entry('Consumer', logLevel.WARN, 'Offset out of range, resetting to default offset', {})
}

describe("kafkajs' log lines", () => {
  it('go to debug, with one readable warning per failed attempt to reach a broker', () => {
    const { logger, lines } = recorder()
    const log = kafkaLogCreator(logger, {})(logLevel.WARN)
    logAttempt(log, 1)
    logAttempt(log, 2)
    expect(lines.filter((l) => !l.startsWith('debug '))).toEqual([
      'warn cannot reach Kafka broker 127.0.0.1:1 (attempt 1): Connection error: connect ECONNREFUSED 127.0.0.1:1',
      'warn cannot reach Kafka broker 127.0.0.1:1 (attempt 2): Connection error: connect ECONNREFUSED 127.0.0.1:1',
    ])
    expect(lines.filter((l) => l.startsWith('debug kafkajs '))).toHaveLength(6)
  })

  it("keep kafkajs' levels when asked for: a client logLevel of its own, or KAFKAJS_LOG_LEVEL", () => {
    for (const [clientLevel, env] of [
      [logLevel.INFO, {}],
      [logLevel.WARN, { KAFKAJS_LOG_LEVEL: 'warn' }],
    ] as const) {
      const { logger, lines } = recorder()
      logAttempt(kafkaLogCreator(logger, env)(clientLevel), 1)
      expect(lines).toEqual([
        'error kafkajs [Connection] Connection error: connect ECONNREFUSED 127.0.0.1:1',
        'error kafkajs [BrokerPool] Failed to connect to seed broker, trying another broker from the list: Connection error: connect ECONNREFUSED 127.0.0.1:1',
        'warn kafkajs [Consumer] Offset out of range, resetting to default offset',
      ])
    }
  })

  it('report a reset of an offset outside the log as an error, whatever the levels (records are skipped)', () => {
    const { logger, lines } = recorder()
    kafkaLogCreator(logger, {})(logLevel.WARN)({
      namespace: 'ConsumerGroup',
      level: logLevel.ERROR,
      label: '',
      log: {
        timestamp: '',
        logger: 'kafkajs',
        message: 'Offset out of range, resetting to default offset',
        topic: 'orders',
        partition: 2,
      },
    } as never)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^error the committed offset of orders\[2\] lies outside the log .*skipped/)
  })
})
