// `mephisto worker --workers N` as a user runs it, on the memory broker (where each worker has a
// broker of its own, so this is about the supervisor, not about splitting partitions; that is
// test/kafka/workerPool.kafka.test.ts): the option's checks, the banner and ready line, ports,
// store directories, the [w<i>] marks, restarts, a crash loop, signals, and a supervisor that dies.
import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { workersOption } from '../src/cli/args.js'
import type { Running } from './cliProcess.js'
import { cliMain, fixture, getJson, mephisto, start } from './cliProcess.js'

const cliApp = fixture('cliApp.ts')
const poolApp = fixture('poolCounter.ts')
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** `n` consecutive free ports on 127.0.0.1. */
async function freePorts(n: number): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)))
    })
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000)
    let ok = true
    for (let i = 0; i < n && ok; i++) ok = await free(base + i)
    if (ok) return base
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** The pids the workers print in their `[w<i>] ready in ... (pid n)` lines, by index. */
function readyPids(run: Running): Map<number, number> {
  const pids = new Map<number, number>()
  for (const m of run.stdout().matchAll(/^\[w(\d+)\] ready in [\d.]+ s \(pid (\d+)\)/gm))
    pids.set(Number(m[1]), Number(m[2]))
  return pids
}

/** Parsed JSON log lines of stderr (other lines are skipped). */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe.concurrent('--workers: checks', () => {
  it.each(['0', 'two', '1.5', '-1', ''])('--workers=%s is a usage error (exit 2)', async (value) => {
    const r = await mephisto(['-A', cliApp, 'worker', `--workers=${value}`])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`--workers must be an integer >= 1 or auto (got ${JSON.stringify(value)})`)
    expect(r.stderr).toContain("Run 'mephisto worker --help'")
    expect(r.stdout).toBe('')
  })

  it('auto is the number of cores; absent is 1', () => {
    expect(workersOption({ workers: 'auto' }, 'worker', () => 6)).toEqual({ count: 6, auto: true })
    expect(workersOption({ workers: '3' }, 'worker')).toEqual({ count: 3, auto: false })
    expect(workersOption({}, 'worker')).toEqual({ count: 1, auto: false })
  })

  it('--workers applies to worker (and reset) only', async () => {
    const r = await mephisto(['-A', cliApp, 'agents', '--workers', '2'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("option --workers does not apply to 'agents'")
  })

  it('ports past 65535 are a usage error, a port in use a failure, both before any worker starts', async () => {
    const high = await mephisto(['-A', cliApp, 'worker', '--workers', '3', '--web-port', '65534'])
    expect(high.code).toBe(2)
    expect(high.stderr).toContain('--workers 3 needs web ports 65534 to 65536, past 65535')
    const base = await freePorts(2)
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(base + 1, '127.0.0.1', resolve))
    try {
      const r = await mephisto(['-A', cliApp, 'worker', '--workers', '2', '--web-port', String(base)])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`web port ${base + 1} on 127.0.0.1 (worker 1's) is in use`)
      expect(r.stdout).not.toContain('[w0]')
    } finally {
      taken.close()
    }
  })
})

describe('--workers: the pool', () => {
  it('--workers 1 is the lone worker of before: no supervisor, no marks, no index', async () => {
    const w = start(cliMain, ['-A', poolApp, 'worker', '--workers', '1', '--web-port', '0'])
    try {
      const [, url] = await w.waitFor(/^ready: pool-counter in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//m)
      expect(w.stdout()).not.toMatch(/│ workers|\[w0\]/)
      const me = (await getJson(`${url}/whoami`)).body
      expect(me).toMatchObject({ index: null, workers: null, pid: w.child.pid })
      w.child.kill('SIGTERM')
      const done = await w.exited
      expect(done.code).toBe(0)
      expect(done.stdout).toContain('stopped: pool-counter (SIGTERM)')
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('runs N workers on consecutive ports with their own store directories, restarts one that is killed, and stops all on SIGTERM', async () => {
    const base = await freePorts(2)
    const w = start(cliMain, ['-A', poolApp, 'worker', '--workers', '2', '--web-port', String(base)], {
      env: { POOL_STORE: 'disk', POOL_ID: 'pool-a' },
    })
    try {
      const [line] = await w.waitFor(/^ready: pool-a in .*$/m)
      const urls = [`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`]
      expect(line).toMatch(
        new RegExp(`^ready: pool-a in [\\d.]+ s, web ${urls[0]}/ \\(w0\\), ${urls[1]}/ \\(w1\\)$`),
      )
      const banner = w.stdout()
      expect(banner).toMatch(/│ workers\s+│ 2 processes, restarted when they die\s+│/)
      expect(banner).toMatch(
        new RegExp(`│ web\\s+│ http://127\\.0\\.0\\.1:${base}/ to :${base + 1}/ \\(w0 to w1\\)\\s+│`),
      )
      expect(banner).toMatch(/│ store\s+│ disk:\/\/ \(per worker: pool-a, pool-a\.w1\)\s+│/)
      expect(banner).toMatch(/│ pid\s+│ \d+ \(the supervisor\)/)
      // One banner: the workers print none of their own.
      expect(banner.match(/mephisto v/g)).toHaveLength(1)

      const who = await Promise.all(urls.map(async (u) => (await getJson(`${u}/whoami`)).body))
      expect(who[0]).toMatchObject({ index: '0', workers: '2', storeAppIds: ['pool-a'] })
      expect(who[1]).toMatchObject({ index: '1', workers: '2', storeAppIds: ['pool-a.w1'] })
      expect(who[0].pid).not.toBe(w.child.pid)
      expect(readyPids(w)).toEqual(
        new Map([
          [0, who[0].pid],
          [1, who[1].pid],
        ]),
      )
      // JSON log lines stay JSON and say which worker wrote them.
      const logs = jsonLines(w.stderr())
      for (const i of [0, 1])
        expect(logs.some((l) => l.worker === i && l.msg === 'worker ready' && l.pid === who[i].pid)).toBe(
          true,
        )

      // A worker killed from outside is restarted, on its port.
      process.kill(who[1].pid, 'SIGKILL')
      await waitUntil('worker 1 back', () =>
        /\[w1\] ready in[^\n]*\n(?:.*\n)*\[w1\] ready in/.test(w.stdout()),
      )
      expect(w.stderr()).toContain(
        `worker 1 (pid ${who[1].pid}) died: killed by SIGKILL; restarting it in 250 ms`,
      )
      const again = (await getJson(`${urls[1]}/whoami`)).body
      expect(again).toMatchObject({ index: '1', storeAppIds: ['pool-a.w1'] })
      expect(again.pid).not.toBe(who[1].pid)
      expect(alive(who[0].pid)).toBe(true)

      w.child.kill('SIGTERM')
      const done = await w.exited
      expect(done.code).toBe(0)
      expect(done.stdout).toContain('[w0] stopped (SIGTERM)')
      expect(done.stdout).toContain('[w1] stopped (SIGTERM)')
      expect(done.stdout).toMatch(/\nstopped: pool-a \(SIGTERM\)\n$/)
      for (const pid of [who[0].pid, again.pid]) expect(alive(pid)).toBe(false)
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('a worker that keeps dying stops the pool with exit 1; pretty logs carry the [w<i>] mark', async () => {
    const began = Date.now()
    const w = start(
      cliMain,
      ['-A', cliApp, 'worker', '--workers', '2', '--without-web', '--log-format', 'pretty'],
      { env: { CLI_FIXTURE: 'crash' } },
    )
    const done = await w.exited
    expect(done.code).toBe(1)
    expect(done.stderr).toMatch(/^\[w[01]\] .*asked to crash/m)
    for (const delay of [250, 500, 1000, 2000, 4000])
      expect(done.stderr).toMatch(
        new RegExp(`worker [01] \\(pid \\d+\\) died: exit code 1; restarting it in ${delay} ms`),
      )
    expect(done.stderr).toMatch(
      /worker [01] \(pid \d+\) died 6 times within 60 s \(last: exit code 1\): stopping all workers/,
    )
    expect(Date.now() - began).toBeLessThan(45_000)
  }, 60_000)

  it('a second signal kills the workers at once, with 128 + the signal', async () => {
    const w = start(cliMain, ['-A', cliApp, 'worker', '--workers', '2', '--without-web'], {
      env: { CLI_FIXTURE: 'slow' },
    })
    try {
      await w.waitFor(/^ready: cli-fixture in [\d.]+ s$/m)
      const pids = [...readyPids(w).values()]
      expect(pids).toHaveLength(2)
      await sleep(300)
      w.child.kill('SIGINT')
      // The first signal starts a drain that waits for the slow event in each worker.
      await sleep(800)
      expect(w.child.exitCode).toBeNull()
      const begun = Date.now()
      w.child.kill('SIGINT')
      const done = await w.exited
      expect(done.code).toBe(130)
      expect(Date.now() - begun).toBeLessThan(5000)
      expect(done.stderr).toContain('SIGINT again: killing the workers at once, without committing')
      for (const pid of pids) expect(alive(pid)).toBe(false)
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('the stop is bounded by --stop-timeout: workers that cannot drain make it exit 1', async () => {
    const w = start(
      cliMain,
      ['-A', cliApp, 'worker', '--workers', '2', '--without-web', '--stop-timeout', '2'],
      {
        env: { CLI_FIXTURE: 'slow' },
      },
    )
    try {
      await w.waitFor(/^ready: cli-fixture/m)
      await sleep(300)
      const begun = Date.now()
      w.child.kill('SIGTERM')
      const done = await w.exited
      expect(done.code).toBe(1)
      expect(Date.now() - begun).toBeGreaterThanOrEqual(1900)
      expect(Date.now() - begun).toBeLessThan(10_000)
      const stuck = jsonLines(done.stderr).filter((l) =>
        String(l.msg).startsWith('the stop did not finish within --stop-timeout 2 s'),
      )
      expect(stuck.map((l) => l.worker).sort()).toEqual([0, 1])
      expect(done.stderr).toContain(
        'not every worker stopped cleanly: worker 0 exit code 1, worker 1 exit code 1',
      )
      expect(done.stdout).not.toMatch(/^stopped:/m)
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('workers whose supervisor is killed stop on their own', async () => {
    const w = start(cliMain, ['-A', poolApp, 'worker', '--workers', '2', '--web-port', '0'], {
      env: { POOL_ID: 'pool-orphans' },
    })
    try {
      await w.waitFor(/^ready: pool-orphans/m)
      const pids = [...readyPids(w).values()]
      expect(pids).toHaveLength(2)
      w.child.kill('SIGKILL')
      await w.exited
      await waitUntil('the orphaned workers to exit', () => pids.every((pid) => !alive(pid)), 15_000)
    } finally {
      w.child.kill('SIGKILL')
      for (const pid of readyPids(w).values()) if (alive(pid)) process.kill(pid, 'SIGKILL')
    }
  })
})
