import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap list of the test broker, or '' when no broker could be had (kafka tests skip). */
    kafkaBrokers: string
    /** docker/kafka-local state dir of the test broker ('' when it was given by KAFKA_BROKERS without one). */
    kafkaLocalDir: string
    /** The SASL_PLAINTEXT PLAIN listener (users admin/admin-secret, mephisto/mephisto-secret), or ''. */
    kafkaSaslBrokers: string
  }
}

const script = fileURLToPath(new URL('../../../../docker/kafka-local/kafka-local.sh', import.meta.url))

/**
 * Gives the `*.kafka.test.ts` files a broker: `KAFKA_BROKERS` when set (and `KAFKA_SASL_BROKERS`
 * for the SASL tests), else a local broker started from Maven jars with kafka-local.sh when Java
 * is installed, stopped after the run. Without either, CI fails the run; elsewhere the Kafka
 * tests are skipped with a loud warning. `MEPHISTO_KAFKA=0` skips them on purpose.
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const fromEnv = process.env.KAFKA_BROKERS
  if (fromEnv) {
    project.provide('kafkaBrokers', fromEnv)
    project.provide('kafkaLocalDir', process.env.MEPHISTO_KAFKA_LOCAL_DIR ?? '')
    project.provide('kafkaSaslBrokers', process.env.KAFKA_SASL_BROKERS ?? '')
    return undefined
  }
  project.provide('kafkaBrokers', '')
  project.provide('kafkaSaslBrokers', '')
  project.provide('kafkaLocalDir', '')
  if (process.env.MEPHISTO_KAFKA === '0') {
    warn('MEPHISTO_KAFKA=0: Kafka tests are skipped.')
    return undefined
  }
  if (!hasJava()) return unavailable('java is not on PATH, so no local Kafka broker can be started')

  const dir = mkdtempSync(join(tmpdir(), 'mephisto-kafka-'))
  const started = Date.now()
  let stdout: string
  try {
    ;({ stdout } = await promisify(execFile)('bash', [script, 'start', '--sasl', '--dir', dir], {
      maxBuffer: 16 * 1024 * 1024,
      timeout: 240_000,
    }))
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    const detail = (error as { stderr?: string }).stderr?.split('\n').slice(-15).join('\n') ?? String(error)
    return unavailable(`kafka-local.sh could not start a broker:\n${detail}`)
  }
  const env = Object.fromEntries(
    stdout
      .split('\n')
      .filter((line) => /^[A-Z0-9_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  )
  const brokers = env.KAFKA_BROKERS ?? ''
  if (!brokers) return unavailable(`kafka-local.sh printed no KAFKA_BROKERS line:\n${stdout}`)
  process.stderr.write(
    `[kafka tests] local broker ${brokers} started in ${Date.now() - started} ms (${dir})\n`,
  )
  project.provide('kafkaBrokers', brokers)
  project.provide('kafkaLocalDir', dir)
  project.provide('kafkaSaslBrokers', env.KAFKA_SASL_BROKERS ?? '')
  return async () => {
    try {
      await promisify(execFile)('bash', [script, 'stop', '--dir', dir], { timeout: 60_000 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

function hasJava(): boolean {
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function unavailable(reason: string): undefined {
  if (process.env.CI === 'true') {
    throw new Error(
      `Kafka tests need a broker and none is available: ${reason}. Set KAFKA_BROKERS or install Java 17.`,
    )
  }
  warn(`Kafka tests are SKIPPED: ${reason}. Set KAFKA_BROKERS=host:port or install Java 17 to run them.`)
  return undefined
}

function warn(message: string): void {
  const bar = '!'.repeat(100)
  process.stderr.write(`\n${bar}\n!! ${message}\n${bar}\n\n`)
}
