// Recovery after kill -9 and an immediate restart of the same worker, per Kafka client: a
// `mephisto worker` process (restartApp.ts) echoes a steady input stream; it is SIGKILLed and
// started again at once with the same instance id (MEPHISTO_INSTANCE_ID), and the figure is the
// time from the restart's spawn to the first echo it writes. kafkajs has no static membership, so
// its new member waits for the group to drop the dead one (the session timeout); a client with
// static membership takes the dead member's place at once.
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'

const root = resolve(import.meta.dirname, '../../..')
const cli = join(root, 'packages/core/src/cli/main.ts')
const appModule = join(root, 'apps/bench/src/restartApp.ts')
const RUNS = 3

export interface RestartResult {
  client: string
  /** Spawn of the restarted worker to its first echo, per run (ms). */
  runs: number[]
  medianMs: number
}

function startWorker(brokers: string[], id: string, client: string): ChildProcess {
  return spawn(
    process.execPath,
    ['--conditions=@mephisto/source', '--import', 'tsx', cli, '-A', appModule, 'worker', '-l', 'warn'],
    {
      cwd: root,
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        RESTART_ID: id,
        MEPHISTO_TRANSPORT: client,
        MEPHISTO_INSTANCE_ID: `${id}-w1`,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Kill -9 and restart, `RUNS` times, with `client`; input keeps flowing throughout. */
export async function restartBench(brokers: string[], client: string): Promise<RestartResult> {
  const id = `bench-restart-${client}-${Date.now().toString(36)}`
  const kafka = new Kafka({ clientId: 'mephisto-bench-restart', brokers, logLevel: logLevel.ERROR })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({
    topics: [
      { topic: `${id}-in`, numPartitions: 4 },
      { topic: `${id}-out`, numPartitions: 1 },
    ],
  })
  const producer = kafka.producer()
  await producer.connect()
  let feeding = true
  const feed = (async () => {
    for (let n = 0; feeding; n++) {
      await producer.send({ topic: `${id}-in`, messages: [{ key: `k${n % 16}`, value: String(n) }] })
      await sleep(20)
    }
  })()
  // The newest echo's timestamp (CreateTime: when the worker sent it), read as echoes come.
  let newest = 0
  const reader = kafka.consumer({ groupId: `${id}-reader` })
  await reader.connect()
  await reader.subscribe({ topic: `${id}-out`, fromBeginning: true })
  await reader.run({
    eachMessage: async ({ message }) => {
      newest = Math.max(newest, Number(message.timestamp))
    },
  })
  const lastEcho = async (): Promise<number> => newest
  const runs: number[] = []
  let worker = startWorker(brokers, id, client)
  try {
    const deadline = Date.now() + 120_000
    while ((await lastEcho()) === 0 && Date.now() < deadline) await sleep(500)
    for (let run = 0; run < RUNS; run++) {
      await sleep(3_000) // settled, committing
      worker.kill('SIGKILL')
      await new Promise((r) => worker.once('exit', r))
      const spawned = Date.now()
      worker = startWorker(brokers, id, client)
      let echoed = 0
      while (echoed <= spawned && Date.now() - spawned < 90_000) {
        await sleep(50)
        echoed = await lastEcho()
      }
      runs.push(echoed > spawned ? echoed - spawned : -1)
    }
  } finally {
    worker.kill('SIGTERM')
    await new Promise((r) => worker.once('exit', r))
    feeding = false
    await feed
    await reader.disconnect()
    await producer.disconnect()
    await admin.deleteTopics({ topics: [`${id}-in`, `${id}-out`] }).catch(() => {})
    await admin.disconnect()
  }
  const ok = runs.filter((r) => r >= 0).sort((a, b) => a - b)
  return { client, runs, medianMs: ok.length ? ok[Math.floor(ok.length / 2)]! : -1 }
}
