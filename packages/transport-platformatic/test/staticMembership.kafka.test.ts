import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { NODE_SOURCE } from '../../core/test/cliProcess.js'
import { describeKafka, kafkaBrokers, testTransport, uniqueName } from './kafka.js'

const fixture = fileURLToPath(new URL('./fixtures/member.ts', import.meta.url))
const SESSION_TIMEOUT = 10_000

interface MemberEvent {
  e: 'started' | 'assign' | 'revoke' | 'record' | 'lost' | 'stopped'
  t: number
  partitions?: number[]
  partition?: number
  code?: string
  message?: string
}

/** A member process (test/fixtures/member.ts) and the events it printed. */
class Member {
  readonly events: MemberEvent[] = []
  readonly child: ChildProcess
  stderr = ''
  readonly spawnedAt = Date.now()

  constructor(
    readonly instanceId: string,
    topic: string,
    group: string,
  ) {
    this.child = spawn(process.execPath, [...NODE_SOURCE, fixture], {
      env: {
        ...process.env,
        KAFKA_BROKERS: kafkaBrokers(),
        MEPHISTO_INSTANCE_ID: instanceId,
        MEMBER_TOPIC: topic,
        MEMBER_GROUP: group,
        MEMBER_SESSION_TIMEOUT: String(SESSION_TIMEOUT),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let buffered = ''
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop()!
      for (const line of lines) if (line.startsWith('{')) this.events.push(JSON.parse(line) as MemberEvent)
    })
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString()
    })
    running.add(this)
  }

  /** The partitions of its last assignment. */
  owned(): number[] {
    return this.events.filter((e) => e.e === 'assign').at(-1)?.partitions ?? []
  }

  first(kind: MemberEvent['e'], after = 0): MemberEvent | undefined {
    return this.events.find((e) => e.e === kind && e.t >= after)
  }

  exited(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null)
      return Promise.resolve(this.child.exitCode)
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
  }
}

const running = new Set<Member>()
afterAll(async () => {
  for (const m of running)
    if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL')
})

async function until(
  what: string,
  check: () => boolean,
  timeoutMs: number,
  members: Member[] = [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) {
      const logs = members.map((m, i) => `member ${i}: ${JSON.stringify(m.events)}\n${m.stderr.slice(-2000)}`)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs.join('\n')}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

describeKafka('static membership (KIP-345) on a real broker', () => {
  it('a worker killed with SIGKILL and restarted within the session timeout gets its partitions back without a rebalance', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('static')
    const group = uniqueName('static')
    await t.admin.ensureTopics([{ name: topic, partitions: 4 }])
    const producer = t.producer({ lingerMs: 0 })
    let producing = true
    const feeding = (async () => {
      for (let i = 0; producing; i++) {
        for (let partition = 0; partition < 4; partition++)
          await producer.send({ topic, partition, key: null, value: Buffer.from(String(i)) })
        await producer.flush()
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    try {
      const a = new Member(uniqueName('worker-a'), topic, group)
      const b = new Member(uniqueName('worker-b'), topic, group)
      await until(
        'the two members to split the partitions and read them',
        () =>
          a.owned().length === 2 &&
          b.owned().length === 2 &&
          a.owned().every((p) => a.events.some((e) => e.e === 'record' && e.partition === p)) &&
          b.owned().every((p) => b.events.some((e) => e.e === 'record' && e.partition === p)),
        60_000,
        [a, b],
      )
      const held = a.owned()
      const bEvents = b.events.length
      a.child.kill('SIGKILL')
      await a.exited()
      // A restart by a supervisor (systemd, Kubernetes, mephisto --workers) takes a moment too.
      await new Promise((r) => setTimeout(r, 500))
      const restarted = new Member(a.instanceId, topic, group)
      await until(
        'the restarted worker to read its partitions again',
        () => held.every((p) => restarted.events.some((e) => e.e === 'record' && e.partition === p)),
        SESSION_TIMEOUT,
        [restarted, b],
      )
      const assigned = restarted.first('assign')!
      const firstRecord = Math.min(...restarted.events.filter((e) => e.e === 'record').map((e) => e.t))
      const figures = {
        restartToAssignMs: assigned.t - restarted.spawnedAt,
        restartToFirstRecordMs: firstRecord - restarted.spawnedAt,
        startedToFirstRecordMs: firstRecord - restarted.first('started')!.t,
      }
      process.stderr.write(`[static membership] ${JSON.stringify(figures)}\n`)
      // The same partitions, no rebalance: the survivor saw neither a revoke nor a new assignment.
      expect(assigned.partitions).toEqual(held)
      expect(b.events.slice(bEvents).filter((e) => e.e === 'assign' || e.e === 'revoke')).toEqual([])
      // Well inside the session timeout, which a dynamic member's partitions wait out.
      expect(figures.restartToFirstRecordMs).toBeLessThan(SESSION_TIMEOUT)
      for (const m of [restarted, b]) m.child.kill('SIGTERM')
      await Promise.all([restarted.exited(), b.exited()])
    } finally {
      producing = false
      await feeding.catch(() => {})
      await producer.close()
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 120_000)

  it('two workers with one instance id: the one fenced stops with an error that says to give each its own MEPHISTO_INSTANCE_ID', async () => {
    const t = testTransport()
    await t.connect()
    const topic = uniqueName('dup')
    const group = uniqueName('dup')
    await t.admin.ensureTopics([{ name: topic, partitions: 2 }])
    try {
      const id = uniqueName('same-id')
      const first = new Member(id, topic, group)
      await until('the first member', () => first.owned().length === 2, 60_000, [first])
      const second = new Member(id, topic, group)
      await until('the first to be fenced', () => first.first('lost') !== undefined, 30_000, [first, second])
      const lost = first.first('lost')!
      expect(lost.code).toBe('CONFIGURATION')
      expect(lost.message).toContain(`Another worker uses instance id "${id}" in group "${group}"`)
      expect(lost.message).toContain('MEPHISTO_INSTANCE_ID')
      expect(await first.exited()).toBe(3)
      // The one that joined last holds the partitions; it is not fenced back (no ping-pong).
      await until('the second member', () => second.owned().length === 2, 30_000, [second])
      await new Promise((r) => setTimeout(r, 1000))
      expect(second.first('lost')).toBeUndefined()
      second.child.kill('SIGTERM')
      await second.exited()
    } finally {
      await t.admin.deleteTopics([topic])
      await t.close()
    }
  }, 120_000)
})
