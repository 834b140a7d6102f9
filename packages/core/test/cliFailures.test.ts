// The `mephisto` command when something is wrong, as a user sees it: a broker out of reach, a
// module that does not load, a mistyped command or option, a memory:// app asked to delete
// topics. One readable line per retry, one final error, the stack only at -l debug.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cliMain, fixture, mephisto, start } from './cliProcess.js'

const app = fixture('cliApp.ts')
const order = JSON.stringify({ customer: 'c1', total: 12.5 })
/** Nothing listens on port 1; 2 retries: 3 attempts, about half a second. */
const unreachable = { CLI_FIXTURE_BROKER: 'kafka://127.0.0.1:1', CLI_FIXTURE_RETRIES: '2' }
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')
const count = (text: string, part: string): number => text.split(part).length - 1

describe.concurrent('a broker out of reach', () => {
  it('send: one warning per attempt, then one error line that says it once, no stack (exit 1)', async () => {
    const r = await mephisto(['-A', app, 'send', 'orders', order], { env: unreachable })
    expect(r.code).toBe(1)
    const err = lines(r.stderr)
    const attempts = err.filter((l) => /cannot reach Kafka broker 127\.0\.0\.1:1 \(attempt \d\)/.test(l))
    expect(attempts, r.stderr).toHaveLength(3)
    const final = err.filter((l) => l.startsWith('mephisto: '))
    expect(final).toEqual([
      expect.stringContaining('BrokerError [BROKER]: Cannot connect to Kafka at 127.0.0.1:1'),
    ])
    expect(count(final[0]!, 'ECONNREFUSED')).toBe(1)
    expect(err).toHaveLength(attempts.length + 1)
    expect(r.stderr).not.toContain('kafkajs')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('worker: the same lines in its log, one "failed to start" without a stack (exit 1)', async () => {
    const w = start(cliMain, ['-A', app, 'worker', '--without-web'], { env: unreachable })
    const r = await w.exited
    expect(r.code).toBe(1)
    const entries = lines(r.stderr).map((l) => JSON.parse(l) as { msg: string; err?: unknown })
    expect(entries.map((e) => e.msg.replace(/\d+\)/, 'n)'))).toEqual([
      ...Array(3).fill(
        'cannot reach Kafka broker 127.0.0.1:1 (attempt n): Connection error: connect ECONNREFUSED 127.0.0.1:1',
      ),
      expect.stringMatching(
        /^worker failed to start: BrokerError \[BROKER\]: Cannot connect to Kafka at 127\.0\.0\.1:1/,
      ),
    ])
    expect(count(entries.at(-1)!.msg, 'ECONNREFUSED')).toBe(1)
    expect(entries.every((e) => e.err === undefined)).toBe(true)
  })

  it("-l debug adds kafkajs' own lines and the stack", async () => {
    const r = await mephisto(['-A', app, 'send', 'orders', order, '-l', 'debug'], { env: unreachable })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('kafkajs [BrokerPool] Failed to connect to seed broker')
    expect(r.stderr).toMatch(/\n\s+at /)
  })
})

describe.concurrent('a module that does not load', () => {
  it('one line with what it threw and where, the stack only at -l debug (exit 1)', async () => {
    const r = await mephisto(['-A', fixture('throws.ts'), 'agents'])
    expect(r.code).toBe(1)
    expect(lines(r.stderr)).toEqual([
      `mephisto: the app module ${fixture('throws.ts')} failed to load: Error: the fixture refused to load (at ${fixture('throws.ts')}:2:7)`,
      '  (-l debug shows the stack)',
    ])
    const debug = await mephisto(['-A', fixture('throws.ts'), 'agents', '-l', 'debug'])
    expect(debug.code).toBe(1)
    expect(lines(debug.stderr)[0]).toContain('failed to load: Error: the fixture refused to load')
    expect(debug.stderr).toMatch(/\n\s+at .*throws\.ts:2:7/)
  })

  it('an import that is not installed: says which and how to fix it first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mephisto-cli-'))
    const module = join(dir, 'app.mjs')
    writeFileSync(module, "import 'mephisto-no-such-package'\nexport const app = 1\n")
    const r = await mephisto(['-A', module, 'agents'])
    expect(r.code).toBe(1)
    expect(lines(r.stderr)[0]).toBe(
      `mephisto: the app module ${module} imports something that is not there: Cannot find package 'mephisto-no-such-package' imported from ${module}; install mephisto-no-such-package (npm install mephisto-no-such-package) or fix the import`,
    )
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })
})

describe.concurrent('did you mean', () => {
  it('an unknown command: the nearest one', async () => {
    const r = await mephisto(['-A', app, 'wroker'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('unknown command "wroker"; did you mean "worker"?')
    const help = await mephisto(['help', 'sedn'])
    expect(help.code).toBe(2)
    expect(help.stderr).toContain('unknown command "sedn"; did you mean "send"?')
  })

  it("an unknown option: the nearest of the command's, or the command it belongs to", async () => {
    const r = await mephisto(['-A', app, 'send', 'orders', order, '--reapeat', '2'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("Unknown option '--reapeat'; did you mean --repeat?")
    const other = await mephisto(['-A', app, 'agents', '--repeat', '3'])
    expect(other.stderr).toContain("option --repeat does not apply to 'agents' (it is an option of send)")
  })
})

describe.concurrent('on the memory broker', () => {
  it('tables --values draws (none) inside the table', async () => {
    const r = await mephisto(['-A', app, 'tables', '--values', 'totals'])
    expect(r.code).toBe(0)
    const table = lines(r.stdout)
    expect(
      table.filter((l) => /^│ \(none\) +│$/.test(l)),
      r.stdout,
    ).toHaveLength(1)
    for (const line of table) expect(line.length).toBe(table[0]!.length)
  })

  it('reset --topics says once that there is nothing here to delete and how to reach Kafka (exit 2)', async () => {
    for (const args of [
      ['reset', '--topics'],
      ['reset', '--topics', '--yes'],
    ]) {
      const r = await mephisto(['-A', app, ...args])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      const [message, ...rest] = lines(r.stderr)
      expect(message).toMatch(
        /^mephisto: --topics .* runs on memory:\/\/default, .* Pass --broker <host:port>/,
      )
      expect(rest).toEqual(["Run 'mephisto reset --help' for usage."])
    }
  })

  it("the banner names the broker as the worker's log does", async () => {
    const w = start(cliMain, ['-A', app, 'worker', '--without-web'])
    try {
      await w.waitFor(/ready: cli-fixture/)
      const logged = lines(w.stderr())
        .map((l) => JSON.parse(l) as { msg: string; broker?: string })
        .find((e) => e.msg === 'worker ready')
      expect(logged?.broker).toBe('memory://default')
      expect(w.stdout()).toMatch(/│ broker\s+│ memory:\/\/default\s+│/)
    } finally {
      w.child.kill('SIGKILL')
    }
  })
})
