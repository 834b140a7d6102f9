import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { App } from '../app/app.js'
import { CliFailure, UsageError } from './exitCodes.js'
import { stackOf } from './failure.js'
import { importTransportPackage } from './transportPackage.js'

/** The App a module exports, and where it came from. */
export interface LoadedApp {
  app: App
  /** Absolute path of the module. */
  path: string
  /** The export that holds the app (`default`, `app`, ...). */
  exportName: string
}

const TS = /\.(?:c|m)?tsx?$/
const TRY_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '/index.ts', '/index.js']

/**
 * Imports the module `spec` (a file path, relative to `cwd`, optionally `:exportName`) and finds
 * its App: the export named in the spec, else the default export, else an export named `app`,
 * else the only App among the exports. TypeScript modules load through tsx, registered here, so
 * users need no build step.
 */
export async function loadApp(spec: string, cwd = process.cwd()): Promise<LoadedApp> {
  const { file, exportName } = splitSpec(spec)
  const path = findFile(resolve(cwd, file))
  if (!path) {
    throw new UsageError(
      `cannot find the app module ${JSON.stringify(file)} (looked for ${resolve(cwd, file)}); pass -A with a path to a .ts or .js file`,
    )
  }
  if (TS.test(path)) await enableTypeScript()
  await importTransportPackage(path)
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (err) {
    throw new CliFailure(loadFailure(err, path), stackOf(err))
  }
  return { ...findApp(mod, path, exportName), path }
}

/**
 * Why the module did not load, and what to do, in one line: TypeScript without tsx, an import
 * that is not there, or what the module threw and where. The stack is left for `-l debug`.
 */
function loadFailure(err: unknown, path: string): string {
  const e = err as (Error & { code?: string }) | undefined
  const message = e instanceof Error ? e.message : String(err)
  if (e?.code === 'ERR_UNKNOWN_FILE_EXTENSION' && TS.test(path))
    return `the app module ${path} is TypeScript, and loading it needs tsx: npm install --save-dev tsx (or build it to .js)`
  if (e?.code === 'ERR_MODULE_NOT_FOUND') {
    const pkg = /Cannot find package '([^']+)'/.exec(message)?.[1]
    const fix = pkg ? `install ${pkg} (npm install ${pkg}) or fix the import` : 'fix the import path'
    return `the app module ${path} imports something that is not there: ${message}; ${fix}`
  }
  const where = e instanceof Error ? throwSite(e) : undefined
  const what = e instanceof Error ? `${e.name}: ${message}` : message
  return `the app module ${path} failed to load: ${what}${where ? ` (at ${where})` : ''}`
}

/** Mephisto's own code: from source, core's src/; built, its dist/ (one bundle). */
const CORE_CODE = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '.', import.meta.url))

/**
 * The first place in `err`'s stack in the user's code (not Node's, not a dependency's, not
 * Mephisto's): where the module threw, or the line of it that called what threw.
 */
function throwSite(err: Error): string | undefined {
  for (const line of (err.stack ?? '').split('\n').slice(1)) {
    const raw = /^\s+at (?:.*? \()?(.+?:\d+:\d+)\)?$/.exec(line)?.[1]
    if (!raw || raw.startsWith('node:')) continue
    const site = raw.startsWith('file://')
      ? fileURLToPath(raw.replace(/:\d+:\d+$/, '')) + raw.slice(raw.search(/:\d+:\d+$/))
      : raw
    if (!site.startsWith(CORE_CODE) && !site.includes('/node_modules/')) return site
  }
  return undefined
}

/** `./app.ts:myApp` -> file and export. A Windows drive letter (`C:\...`) is not an export. */
function splitSpec(spec: string): { file: string; exportName: string | undefined } {
  const m = /^(.+):([A-Za-z_$][\w$]*)$/.exec(spec)
  if (m && !/^[A-Za-z]$/.test(m[1]!)) return { file: m[1]!, exportName: m[2]! }
  return { file: spec, exportName: undefined }
}

function findFile(path: string): string | undefined {
  const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile()
  if (isFile(path)) return path
  for (const ext of TRY_EXTENSIONS) if (isFile(path + ext)) return path + ext
  return undefined
}

/**
 * Lets `import()` load TypeScript. Skipped when tsx already runs the CLI (`node --import tsx`,
 * the workspace's way), since registering its hooks twice would transform every file twice.
 * Without tsx installed, Node's own type stripping (Node 22.18+, 23.6+) is tried.
 */
async function enableTypeScript(): Promise<void> {
  const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`
  if (/\btsx\b/.test(flags)) return
  let api: { register: () => unknown }
  try {
    api = (await import('tsx/esm/api')) as { register: () => unknown }
  } catch {
    // tsx is an optional peer dependency. Node may still strip the types itself; if it cannot,
    // the import fails and the hint says to install tsx.
    return
  }
  api.register()
}

/**
 * An App of this copy of core, or of another copy (the user's module may resolve
 * `@mephisto/core` to a different install than the CLI's): recognised by shape, then.
 */
export function isApp(x: unknown): x is App {
  if (x instanceof App) return true
  if (typeof x !== 'object' || x === null) return false
  const a = x as Partial<Record<keyof App, unknown>>
  return (
    typeof a.id === 'string' &&
    typeof a.start === 'function' &&
    typeof a.stop === 'function' &&
    a.topics instanceof Map &&
    Array.isArray(a.agents) &&
    Array.isArray(a.tables)
  )
}

function findApp(
  mod: Record<string, unknown>,
  path: string,
  wanted: string | undefined,
): Omit<LoadedApp, 'path'> {
  const exported = Object.keys(mod)
  if (wanted !== undefined) {
    if (!(wanted in mod)) {
      throw new UsageError(
        `${path} has no export named ${wanted} (it exports ${exported.join(', ') || 'nothing'})`,
      )
    }
    if (!isApp(mod[wanted])) throw new UsageError(`the export ${wanted} of ${path} is not an App`)
    return { app: mod[wanted], exportName: wanted }
  }
  if (isApp(mod.default)) return { app: mod.default, exportName: 'default' }
  if (isApp(mod.app)) return { app: mod.app, exportName: 'app' }
  const apps = exported.filter((name) => isApp(mod[name]))
  const distinct = new Set(apps.map((name) => mod[name]))
  if (distinct.size === 1) return { app: mod[apps[0]!] as App, exportName: apps[0]! }
  if (distinct.size > 1) {
    throw new UsageError(
      `${path} exports several Apps (${apps.join(', ')}); pick one with -A ${path}:<export>`,
    )
  }
  throw new UsageError(
    `${path} exports no App (exports: ${exported.join(', ') || 'none'}); export one: export const app = new App({ id: ... })`,
  )
}
