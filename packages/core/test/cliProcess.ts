import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** packages/core */
export const coreDir = fileURLToPath(new URL('..', import.meta.url))
/** The repository root. */
export const repoDir = fileURLToPath(new URL('../../..', import.meta.url))
export const cliMain = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

/** How the workspace runs a TypeScript entry from source (what `pnpm mephisto` does). */
export const NODE_SOURCE = ['--conditions=@mephisto/source', '--import', 'tsx']

export interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** A child process whose output is collected as it comes. */
export interface Running {
  child: ChildProcess
  stdout(): string
  stderr(): string
  /** Resolves with the first match of `pattern` in stdout (rejects after `timeoutMs` or on exit). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  exited: Promise<Finished>
}

let started = 0

/**
 * Starts `node <script> ...args` from source, in `cwd` (default: the repository root). Each process
 * gets a static membership id of its own (`MEPHISTO_INSTANCE_ID`, unless `env` gives one): worker
 * processes of one host would otherwise share `<host>-w0` and fence each other on a transport with
 * static membership (kafkajs ignores it).
 */
export function start(
  script: string,
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Running {
  const child = spawn(process.execPath, [...NODE_SOURCE, script, ...args], {
    cwd: options.cwd ?? repoDir,
    env: {
      ...process.env,
      NO_COLOR: '1',
      MEPHISTO_INSTANCE_ID: `test-${process.pid}-${++started}`,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const listeners = new Set<() => void>()
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d
    for (const l of listeners) l()
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d
  })
  const exited = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => {
      for (const l of listeners) l()
      resolve({ code, signal, stdout: out, stderr: err })
    })
  })
  let done = false
  void exited.then(() => (done = true))
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = out.match(pattern)
          if (m) {
            cleanup()
            resolve(m)
          } else if (done || child.exitCode !== null) {
            cleanup()
            reject(
              new Error(
                `process exited (${child.exitCode}) before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`,
              ),
            )
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(new Error(`no ${pattern} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`))
        }, timeoutMs)
        const cleanup = (): void => {
          clearTimeout(timer)
          listeners.delete(check)
        }
        listeners.add(check)
        check()
      })
    },
  }
}

/** Runs the `mephisto` CLI from source to completion. */
export async function mephisto(
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Finished> {
  const run = start(cliMain, args, options)
  const timer = setTimeout(() => run.child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  try {
    return await run.exited
  } finally {
    clearTimeout(timer)
  }
}

/** GET a URL and parse its JSON body. */
export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url)
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body }
}
