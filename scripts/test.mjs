#!/usr/bin/env node
// Runs every package's tests through turbo against one real Kafka broker, then prints one
// summary line. The broker: KAFKA_BROKERS when set; otherwise docker/kafka-local is started
// (Java 17 + Maven) for the run and stopped after. With CI=true a broker that cannot start
// fails the run; without CI the Kafka tests are skipped, loudly.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const ci = process.env.CI === 'true' || process.env.CI === '1'
const env = { ...process.env }
const extra = process.argv.slice(2)
let brokerDir

function say(msg) {
  process.stdout.write(`[test] ${msg}\n`)
}

function startBroker() {
  if (env.KAFKA_BROKERS) {
    say(`using the Kafka broker at KAFKA_BROKERS=${env.KAFKA_BROKERS}`)
    return
  }
  const java = spawnSync('java', ['-version'], { stdio: 'ignore' })
  const mvn = spawnSync('mvn', ['-v'], { stdio: 'ignore' })
  if (java.status !== 0 || mvn.status !== 0) {
    const msg = 'no KAFKA_BROKERS and no Java 17 + Maven to start docker/kafka-local'
    if (ci) throw new Error(`${msg}: CI needs a real broker`)
    warnSkip(msg)
    return
  }
  brokerDir = mkdtempSync(join(tmpdir(), 'mephisto-kafka-'))
  say('starting a local Kafka broker (docker/kafka-local)...')
  const started = Date.now()
  const r = spawnSync(
    'bash',
    [join(root, 'docker/kafka-local/kafka-local.sh'), 'start', '--sasl', '--dir', brokerDir],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const out = r.stdout ?? ''
  const state = readState(brokerDir)
  const brokers = state.KAFKA_BROKERS ?? /KAFKA_BROKERS=(\S+)/.exec(out)?.[1]
  if (r.status !== 0 || !brokers) {
    process.stdout.write(out)
    const msg = `the local Kafka broker did not start (exit ${r.status})`
    if (ci) throw new Error(msg)
    warnSkip(msg)
    return
  }
  env.KAFKA_BROKERS = brokers
  if (state.KAFKA_SASL_BROKERS) env.KAFKA_SASL_BROKERS = state.KAFKA_SASL_BROKERS
  env.MEPHISTO_KAFKA_LOCAL_DIR = brokerDir
  say(`Kafka broker up at ${brokers} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

function readState(dir) {
  try {
    const text = readFileSync(join(dir, 'state.env'), 'utf8')
    return Object.fromEntries(
      text
        .split('\n')
        .map((l) => /^([A-Z_]+)=(.*)$/.exec(l.trim()))
        .filter(Boolean)
        .map((m) => [m[1], m[2].replace(/^['"]|['"]$/g, '')]),
    )
  } catch {
    return {}
  }
}

function warnSkip(why) {
  const bar = '!'.repeat(78)
  process.stdout.write(
    `\n${bar}\n!! ${why}.\n!! THE KAFKA INTEGRATION TESTS WILL BE SKIPPED. Set KAFKA_BROKERS or install Java 17 + Maven.\n${bar}\n\n`,
  )
  env.MEPHISTO_SKIP_KAFKA = '1'
}

function stopBroker() {
  if (!brokerDir) return
  spawnSync('bash', [join(root, 'docker/kafka-local/kafka-local.sh'), 'stop', '--dir', brokerDir], {
    stdio: 'inherit',
  })
  rmSync(brokerDir, { recursive: true, force: true })
}

let status = 1
const reports = mkdtempSync(join(tmpdir(), 'mephisto-test-reports-'))
try {
  startBroker()
  env.MEPHISTO_TEST_REPORT_DIR = reports
  const turbo = spawnSync('npx', ['turbo', 'run', 'test', '--concurrency=1', '--continue', ...extra], {
    cwd: root,
    env,
    stdio: 'inherit',
  })
  status = turbo.status ?? 1
} catch (err) {
  process.stdout.write(`[test] ${err.message}\n`)
} finally {
  stopBroker()
}

let passed = 0
let failed = 0
let skipped = 0
const failures = []
for (const f of readdirSync(reports)) {
  try {
    const r = JSON.parse(readFileSync(join(reports, f), 'utf8'))
    passed += r.numPassedTests ?? 0
    failed += r.numFailedTests ?? 0
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
    for (const file of r.testResults ?? []) {
      const failedTests = (file.assertionResults ?? []).filter((t) => t.status === 'failed')
      for (const t of failedTests)
        failures.push({ file: file.name, name: t.fullName, why: t.failureMessages ?? [] })
      // A file that failed to load or whose hooks threw has no failed test, only a message.
      if (failedTests.length === 0 && file.status === 'failed' && file.message) {
        failures.push({ file: file.name, name: '(the file itself)', why: [file.message] })
      }
    }
  } catch {}
}
rmSync(reports, { recursive: true, force: true })
if (status !== 0 && failed === 0) failed = 1
// The failures again at the very end, so a log read from its tail shows what broke.
for (const { file, name, why } of failures) {
  const lines = why.join('\n').split('\n').slice(0, 25).join('\n    ')
  process.stdout.write(`\nFAILED ${file.replace(`${root}/`, '')} > ${name}\n    ${lines}\n`)
}
process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
process.exit(status)
