// The `mephisto` command as a user runs it: a separate process on the memory broker, its
// output and its exit codes (0 done, 1 runtime failure, 2 usage error).
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parseCommandLine } from '../src/cli/args.js'
import { createCliLogger } from '../src/cli/cliLogger.js'
import type { CommandContext } from '../src/cli/context.js'
import { resetCommand } from '../src/cli/resetCommand.js'
import { App } from '../src/index.js'
import { cliMain, coreDir, fixture, getJson, mephisto, NODE_SOURCE, start } from './cliProcess.js'

const app = fixture('cliApp.ts')
const order = JSON.stringify({ customer: 'c1', total: 12.5 })

describe.concurrent('mephisto: help and usage errors', () => {
  it('--help prints the commands and the exit codes, and exits 0', async () => {
    const r = await mephisto(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('Usage: mephisto -A <module> <command>')
    for (const c of ['worker', 'send', 'agents', 'tables', 'topics', 'reset', 'dlq replay'])
      expect(r.stdout).toContain(c)
    expect(r.stdout).toMatch(/Exit codes: 0 done, 1 runtime failure.*\n2 usage error/)
  })

  it.each(['worker', 'send', 'agents', 'tables', 'topics', 'reset', 'dlq'])(
    '%s --help exits 0 with the command usage',
    async (command) => {
      const r = await mephisto([command, '--help'])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`Usage: mephisto -A <module> ${command}`)
      expect(r.stderr).toBe('')
    },
  )

  it("the package's bin runs the built CLI, or says how to build it", async () => {
    const pkg = JSON.parse(readFileSync(join(coreDir, 'package.json'), 'utf8'))
    expect(pkg.bin.mephisto).toBe('./bin/mephisto.js')
    expect(pkg.files).toContain('bin')
    // Plain node, as an installed bin runs: no tsx, no source condition.
    const r = await promisify(execFile)(process.execPath, [
      join(coreDir, 'bin/mephisto.js'),
      '--version',
    ]).then(
      (ok) => ({ code: 0, ...ok }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    )
    if (existsSync(join(coreDir, 'dist/cli.js'))) {
      expect(r.stdout.trim()).toBe(pkg.version)
      expect(r.code).toBe(0)
    } else {
      expect(r.stderr).toContain('@mephisto/core is not built (no dist/cli.js)')
      expect(r.code).toBe(1)
    }
  })

  it('no command: the help goes to stderr and the exit code is 2', async () => {
    const r = await mephisto([])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('Usage: mephisto')
  })

  it('an unknown command, an unknown option or an option of another command exits 2', async () => {
    const unknown = await mephisto(['-A', app, 'frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('unknown command "frobnicate"')
    const option = await mephisto(['-A', app, 'agents', '--nope'])
    expect(option.code).toBe(2)
    expect(option.stderr).toMatch(/Unknown option '--nope'/)
    const other = await mephisto(['-A', app, 'agents', '--repeat', '3'])
    expect(other.code).toBe(2)
    expect(other.stderr).toContain("option --repeat does not apply to 'agents'")
    expect(other.stderr).toContain("Run 'mephisto agents --help'")
    // A '--' from a script runner ends the options: the worker refuses what follows, loudly.
    const dashes = await mephisto(['-A', app, 'worker', '--', '--web-port', '7000'])
    expect(dashes.code).toBe(2)
    expect(dashes.stderr).toContain(`worker takes no arguments (got "--web-port" "7000")`)
  })

  it('a bad --loglevel exits 2', async () => {
    const r = await mephisto(['-A', app, 'agents', '-l', 'chatty'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--loglevel must be one of')
  })
})

describe.concurrent('mephisto: finding the app', () => {
  it('no -A exits 2', async () => {
    const r = await mephisto(['agents'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no app given: pass -A <module>')
  })

  it('a module that does not exist exits 2 and names the path', async () => {
    const r = await mephisto(['-A', 'does/not/exist.ts', 'agents'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /cannot find the app module "does\/not\/exist.ts" \(looked for .*does\/not\/exist.ts\)/,
    )
  })

  it('a module without an App exits 2 and lists its exports', async () => {
    const r = await mephisto(['-A', fixture('noApp.ts'), 'agents'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('exports no App (exports: notAnApp)')
  })

  it('several Apps: exits 2 unless one is picked with :name', async () => {
    const ambiguous = await mephisto(['-A', fixture('twoApps.ts'), 'topics'])
    expect(ambiguous.code).toBe(2)
    expect(ambiguous.stderr).toContain('exports several Apps (first, second)')
    const picked = await mephisto(['-A', `${fixture('twoApps.ts')}:second`, 'topics', '--json'])
    expect(picked.code).toBe(0)
    expect(JSON.parse(picked.stdout).map((t: { name: string }) => t.name)).toContain('second-topic')
  })

  it('a module that throws while loading is a runtime failure (exit 1)', async () => {
    const r = await mephisto(['-A', fixture('throws.ts'), 'agents'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('failed to load')
    expect(r.stderr).toContain('the fixture refused to load')
  })

  it('loads a JavaScript module whose App is the default export', async () => {
    const r = await mephisto(['-A', fixture('defaultApp.mjs'), 'topics', '--json'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).map((t: { name: string }) => t.name)).toContain('js-topic')
  })
})

describe.concurrent('mephisto agents, tables, topics', () => {
  it('agents lists every agent with its source, error policy and dead-letter topic', async () => {
    const text = await mephisto(['-A', app, 'agents'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/│ sumOrders\s+│ orders\s+│ 1\s+│ dlq\s+│ cli-fixture-orders-dlq\s+│/)
    const json = await mephisto(['-A', app, 'agents', '--json'])
    expect(JSON.parse(json.stdout)).toEqual([
      {
        name: 'sumOrders',
        source: 'orders',
        sourceKind: 'topic',
        concurrency: 1,
        onError: 'dlq',
        dlq: 'cli-fixture-orders-dlq',
      },
      {
        name: 'notify',
        source: 'notices',
        sourceKind: 'channel',
        concurrency: 1,
        onError: 'crash',
        dlq: 'cli-fixture-notices-dlq',
      },
    ])
  })

  it('tables lists partitions, changelogs, store and windows', async () => {
    const json = await mephisto(['-A', app, 'tables', '--json'])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual([
      {
        name: 'totals',
        partitions: 4,
        changelog: 'cli-fixture-totals-changelog',
        store: 'memory://',
        windows: [],
        hasDefault: true,
      },
      {
        name: 'totals-per-hour',
        partitions: 4,
        changelog: 'cli-fixture-totals-per-hour-changelog',
        store: 'memory://',
        windows: ['tumbling 1h (grace 24h)'],
        hasDefault: true,
      },
    ])
    const text = await mephisto(['-A', app, 'tables'])
    expect(text.stdout).toContain('tumbling 1h (grace 24h)')
  })

  it('topics lists declared, internal, changelog, dead-letter and leader topics', async () => {
    const r = await mephisto(['-A', app, 'topics', '--json'])
    expect(r.code).toBe(0)
    const roles = Object.fromEntries(
      JSON.parse(r.stdout).map((t: { name: string; role: string }) => [t.name, t.role]),
    )
    expect(roles).toEqual({
      orders: 'topic',
      receipts: 'internal',
      'cli-fixture-totals-changelog': 'changelog',
      'cli-fixture-totals-per-hour-changelog': 'changelog',
      'cli-fixture-totals-per-hour-window-time-changelog': 'changelog',
      'cli-fixture-orders-dlq': 'dlq',
      'cli-fixture-notices-dlq': 'dlq',
      'cli-fixture-__leader': 'leader',
      'cli-fixture-__routes': 'routes',
      'cli-fixture-__replies': 'replies',
    })
  })
})

describe.concurrent('mephisto send', () => {
  it('sends to a topic and reports where it went (exit 0)', async () => {
    const r = await mephisto(['-A', app, 'send', 'orders', order, '--key', 'c1'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^sent 1 message to orders: partition \d \(last offset 0\)\n$/)
    expect(r.stderr).toContain('on memory:// the message stays in this process')
  })

  it('sends to the source topic of an agent named instead, --repeat times, to --partition', async () => {
    const r = await mephisto([
      '-A',
      app,
      'send',
      'sumOrders',
      order,
      '--repeat',
      '3',
      '--partition',
      '2',
      '--json',
    ])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ topic: 'orders', sent: 3, offsets: [{ partition: 2, offset: 2 }] })
  })

  it('bad JSON exits 2 and sends nothing', async () => {
    const r = await mephisto(['-A', app, 'send', 'orders', '{"customer": "c1", '])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('the value is not valid JSON')
    expect(r.stdout).toBe('')
  })

  it("a value the topic's schema refuses exits 2", async () => {
    const r = await mephisto(['-A', app, 'send', 'orders', '{"customer": "c1"}'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(
      'does not fit topic orders: value failed schema validation: total: expected a number',
    )
  })

  it('an unknown topic or agent exits 2 and lists the known ones', async () => {
    const r = await mephisto(['-A', app, 'send', 'ordres', order])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(
      'has no topic or agent named "ordres" (topics: orders, receipts; agents: sumOrders, notify)',
    )
  })

  it('an agent on a channel cannot be sent to from outside (exit 2)', async () => {
    const r = await mephisto(['-A', app, 'send', 'notify', '"hello"'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('reads the in-process channel notices')
  })

  it('missing value, --repeat 0, or a partition out of range exit 2', async () => {
    const missing = await mephisto(['-A', app, 'send', 'orders'])
    expect(missing.code).toBe(2)
    const zero = await mephisto(['-A', app, 'send', 'orders', order, '--repeat', '0'])
    expect(zero.code).toBe(2)
    expect(zero.stderr).toContain('--repeat must be an integer >= 1')
    const range = await mephisto(['-A', app, 'send', 'orders', order, '--partition', '9'])
    expect(range.code).toBe(2)
    expect(range.stderr).toContain('--partition must be below 4')
  })
})

describe.concurrent('mephisto reset and dlq on the memory broker', () => {
  it('reset says the memory store keeps nothing (exit 0)', async () => {
    const r = await mephisto(['-A', app, 'reset'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('memory:// keeps no local state between runs')
  })

  it('dlq without replay, or of a topic that does not exist, fails with a message', async () => {
    const usage = await mephisto(['-A', app, 'dlq', 'cli-fixture-orders-dlq'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('mephisto dlq replay <dlq-topic>')
    const missing = await mephisto(['-A', app, 'dlq', 'replay', 'no-such-dlq'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('dead-letter topic no-such-dlq does not exist')
  })
})

describe('mephisto reset --topics next to another app', () => {
  // In this process: the memory broker of a separate CLI process would be empty. App `orders`
  // shares the broker with app `orders-eu`, whose id starts with `orders-`.
  it("lists and deletes only the app's own topics, none of orders-eu's", async () => {
    const broker = `memory://reset-neighbours-${process.pid}`
    const app = new App({ id: 'orders', broker, logger: 'silent' })
    const orders = app.topic<string, { region: string }>('orders')
    app.topic('receipts', { internal: true })
    app.table<string, number>('counts', { default: () => 0 })
    app.agent(
      orders,
      async (stream) => {
        for await (const _ of stream.groupBy((o) => o.region, { name: 'region' })) {
          // counting is not the point: only the topic names are
        }
      },
      { name: 'byRegion' },
    )

    const own = [
      'orders-__leader',
      'orders-byRegion-region-repartition',
      'orders-counts-changelog',
      'receipts',
    ]
    const kept = [
      'orders', // declared, not internal: the input
      'orders-orders-dlq', // dead letters are evidence
      'orders-eu-__leader',
      'orders-eu-byRegion-region-repartition',
      'orders-eu-counts-changelog',
      'orders-eu-orders-dlq',
      'orders-eu-receipts-repartition',
    ]
    const transport = app.createTransport()
    await transport.connect()
    try {
      await transport.admin.ensureTopics([...own, ...kept].map((name) => ({ name, partitions: 1 })))
      const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
        let out = ''
        let err = ''
        const ctx: CommandContext = {
          argv: parseCommandLine(args),
          output: { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) },
          loaded: { app, path: 'cli.test.ts', exportName: 'app' },
          app,
          logger: await createCliLogger({ level: 'silent', format: 'json', name: app.id }),
        }
        return { code: await resetCommand(ctx), out, err }
      }
      const listed = (text: string): string[] =>
        text
          .split('\n')
          .filter((l) => l.startsWith('  '))
          .map((l) => l.trim())

      const dry = await run(['reset', '--topics'])
      expect(dry.code).toBe(2)
      expect(listed(dry.out)).toEqual(own)
      expect(dry.err).toContain('nothing was deleted or reset: add --yes to delete these topics')
      expect((await transport.admin.listTopics()).sort()).toEqual([...own, ...kept].sort())

      const done = await run(['reset', '--topics', '--yes'])
      expect(done.code, done.err).toBe(0)
      expect(listed(done.out)).toEqual(own)
      expect((await transport.admin.listTopics()).sort()).toEqual([...kept].sort())
    } finally {
      await transport.close()
    }
  })
})

describe.concurrent("the CLI's logs", () => {
  // A value from bad input that tries to pass for a log line of its own and to clear the screen.
  const fake = 'x\n[12:00:00.000] ERROR (app): all offsets reset\r\u001b[2J\u0085\u009b31m\u2028'
  /** Control characters a terminal or a line-based reader acts on, the line feed aside. */
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  const rawControl = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/

  async function logOnce(format: 'json' | 'pretty'): Promise<string> {
    const module = pathToFileURL(join(coreDir, 'src/cli/cliLogger.ts')).href
    const script = `
      import { createCliLogger } from ${JSON.stringify(module)}
      const logger = await createCliLogger({ level: 'info', format: ${JSON.stringify(format)}, name: 'app' })
      const fake = ${JSON.stringify(fake)}
      const err = new Error('bad record ' + fake, { cause: new Error('root cause') })
      logger.warn('skipped ' + fake, { key: fake, nested: { values: [fake] }, err })
      logger.flush()
    `
    const r = await promisify(execFile)(
      process.execPath,
      [...NODE_SOURCE, '--input-type=module', '-e', script],
      {
        env: { ...process.env, NO_COLOR: '1' },
      },
    )
    return r.stderr
  }

  it('JSON: one line per entry, control characters escaped, the stack and its cause kept', async () => {
    const out = await logOnce('json')
    expect(out.indexOf('\n')).toBe(out.length - 1)
    expect(out).not.toMatch(rawControl)
    const entry = JSON.parse(out)
    expect(entry.msg).toBe(`skipped ${fake}`)
    expect(entry.key).toBe(fake)
    expect(entry.nested.values).toEqual([fake])
    expect(entry.err.stack).toMatch(
      /^Error: bad record x\n[\s\S]*\n {4}at [\s\S]*\ncaused by: Error: root cause\n {4}at /,
    )
  })

  it('pretty: a fake entry cannot start a line, no raw escape reaches the terminal, the stack is kept', async () => {
    const out = await logOnce('pretty')
    expect(out).not.toMatch(rawControl)
    const lines = out.trimEnd().split('\n')
    // The entry's own first line; every other line is indented under it.
    expect(lines[0]).toMatch(/^\[[\d:.]+\] WARN \(app\): skipped x\\n\[12:00:00.000\] ERROR/)
    for (const line of lines.slice(1)) expect(line).toMatch(/^\s/)
    expect(out).toMatch(/\n\s+at /)
    expect(out).toContain('caused by: Error: root cause')
  })
})

describe('mephisto worker', () => {
  it('prints the banner, serves /health once ready, and exits 0 on SIGTERM after a clean stop', async () => {
    const w = start(cliMain, ['-A', app, 'worker', '--web-port', '0', '-l', 'info'])
    try {
      await w.waitFor(/┌─ tables/)
      const banner = w.stdout()
      expect(banner).toMatch(/│ id\s+│ cli-fixture\s+│/)
      expect(banner).toMatch(/│ broker\s+│ memory:\/\/default\s+│/)
      expect(banner).toMatch(/│ store\s+│ memory:\/\/\s+│/)
      expect(banner).toContain('sumOrders')
      expect(banner).toContain('totals-per-hour')
      const [, url] = await w.waitFor(/ready: cli-fixture in [\d.]+ s, web (http:\/\/127\.0\.0\.1:\d+)\//)
      const health = await getJson(`${url}/health`)
      expect(health.status).toBe(200)
      expect(health.body).toMatchObject({ ready: true, app: 'cli-fixture' })
      // Logs are JSON lines on stderr when it is not a terminal.
      expect(
        w
          .stderr()
          .split('\n')
          .some((l) => l.includes('"msg":"worker ready"')),
      ).toBe(true)
      w.child.kill('SIGTERM')
      const done = await w.exited
      expect(done.code).toBe(0)
      expect(done.stdout).toContain('stopped: cli-fixture (SIGTERM)')
      expect(done.stderr).toContain('worker stopped')
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('a second signal exits at once, without waiting for the drain, with 128 + the signal', async () => {
    const w = start(cliMain, ['-A', app, 'worker', '--without-web'], { env: { CLI_FIXTURE: 'slow' } })
    try {
      await w.waitFor(/ready: cli-fixture/)
      await new Promise((r) => setTimeout(r, 300))
      w.child.kill('SIGINT')
      // The first signal starts a drain that waits for the slow event (up to a minute).
      await new Promise((r) => setTimeout(r, 500))
      expect(w.child.exitCode).toBeNull()
      const begun = Date.now()
      w.child.kill('SIGINT')
      const done = await w.exited
      expect(done.code).toBe(130)
      expect(Date.now() - begun).toBeLessThan(5000)
      expect(done.stderr).toContain('SIGINT again: exiting at once without committing')
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('a stop that hangs says what it waits for and gives up at --stop-timeout with exit 1', async () => {
    // The slow event blocks the channel agent's drain for a minute (drainTimeoutMs 60 s).
    const w = start(cliMain, ['-A', app, 'worker', '--without-web', '--stop-timeout', '2'], {
      env: { CLI_FIXTURE: 'slow' },
    })
    try {
      await w.waitFor(/ready: cli-fixture/)
      await new Promise((r) => setTimeout(r, 300))
      const begun = Date.now()
      w.child.kill('SIGTERM')
      const done = await w.exited
      expect(done.code).toBe(1)
      expect(Date.now() - begun).toBeGreaterThanOrEqual(1900)
      expect(Date.now() - begun).toBeLessThan(10_000)
      expect(done.stderr).toContain('the stop did not finish within --stop-timeout 2 s')
      expect(done.stderr).toContain('still waiting for agent notify to finish')
      expect(done.stdout).not.toContain('stopped: cli-fixture')
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('a signal while the worker is still starting is bounded by --stop-timeout too', async () => {
    // Nothing listens on port 1: kafkajs retries the connection for about 10 s before start fails.
    const w = start(cliMain, ['-A', app, 'worker', '--without-web', '--stop-timeout', '2'], {
      env: { CLI_FIXTURE_BROKER: 'kafka://127.0.0.1:1' },
    })
    try {
      await w.waitFor(/mephisto v/)
      await new Promise((r) => setTimeout(r, 300))
      const begun = Date.now()
      w.child.kill('SIGTERM')
      const done = await w.exited
      expect(done.code).toBe(1)
      expect(Date.now() - begun).toBeLessThan(6_000)
      expect(done.stderr).toContain('the stop did not finish within --stop-timeout 2 s (still starting)')
    } finally {
      w.child.kill('SIGKILL')
    }
  })

  it('--stop-timeout must be a whole number of seconds', async () => {
    const r = await mephisto(['-A', app, 'worker', '--stop-timeout', 'soon'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--stop-timeout must be an integer >= 0 (got "soon")')
  })

  it('a worker that crashes exits 1', async () => {
    const w = start(cliMain, ['-A', app, 'worker', '--without-web'], { env: { CLI_FIXTURE: 'crash' } })
    const done = await w.exited
    expect(done.code).toBe(1)
    expect(done.stderr).toContain('asked to crash')
  })

  it('--web-port out of range exits 2', async () => {
    const r = await mephisto(['-A', app, 'worker', '--web-port', '70000'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--web-port must be 0 to 65535')
  })
})
