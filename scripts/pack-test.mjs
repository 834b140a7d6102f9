#!/usr/bin/env node
// Tests the packages as a user gets them: packs every published package (pnpm pack, so
// `workspace:` ranges and `publishConfig` are applied as on publish), checks each tarball (files,
// manifest, publint, attw), then installs the tarballs with npm into a scratch project outside the
// workspace and checks ESM import, CJS require, the types under moduleResolution nodenext and
// bundler, and the `mephisto` CLI (help, an app listed and run as a worker, a web port in use).
// Prints every problem it finds and exits 1 if there is any. Run after `pnpm build`; it needs the
// npm registry (or npm's cache) for the packages' own dependencies.
//
// Usage: node scripts/pack-test.mjs [--keep] [--tarballs DIR]
//   --keep           leave the scratch directory behind
//   --tarballs DIR   test the tarballs in DIR (or DIR/packages: `changeset pack --out-dir DIR`)
//                    instead of packing: a release publishes exactly what was tested
import { spawn, spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { builtinModules } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { isDeepStrictEqual } from 'node:util'

const root = resolve(import.meta.dirname, '..')
const keep = process.argv.includes('--keep')
const given = process.argv.includes('--tarballs')
  ? resolve(process.argv[process.argv.indexOf('--tarballs') + 1] ?? '')
  : undefined
const started = Date.now()
const rootPkg = readJson(join(root, 'package.json'))
/** pnpm, the version the workspace names (packageManager). */
const PNPM = ['npx', '-y', rootPkg.packageManager]
const NODE_RANGE = rootPkg.engines.node
const LICENSE = readFileSync(join(root, 'LICENSE'), 'utf8')
/** The only conditions a published exports map may use: none of the workspace's own. */
const CONDITIONS = new Set(['types', 'import', 'require', 'node', 'default'])
/** The workspace-only condition that resolves packages to their source (tsconfig.base.json). */
const SOURCE_CONDITION = '@mephisto/source'
/** The version a user may already have: the monitor must use it, not install a second copy. */
const USER_PROM_CLIENT = '15.1.2'

const problems = []
/** The scratch directory, once made: kept when a check fails, to look into. */
let scratch
const problem = (where, what) => {
  problems.push(`${where}: ${what}`)
  say(`  FAIL ${where}: ${what}`)
}
function say(msg) {
  process.stdout.write(`[pack-test ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`)
}
function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'))
}

/** Runs a command to its end (bounded); a failure is a problem, reported with its output. */
function run(where, cmd, args, { cwd, timeoutMs = 120_000, env, quiet = false } = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  })
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  if (r.status !== 0) {
    const why = r.error ? String(r.error.message) : `exit ${r.status ?? r.signal}`
    const first = output.split('\n').find((l) => l.trim() !== '') ?? 'no output'
    problem(where, `failed (${why}): ${first.trim()}\n${indent(`$ ${[cmd, ...args].join(' ')}\n${output}`)}`)
    return { ok: false, output }
  }
  if (!quiet && output) say(indent(output))
  return { ok: true, output }
}
const indent = (text) =>
  text
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')

// --------------------------------------------------------------------------------------------
// 1. The published packages, built
// --------------------------------------------------------------------------------------------
const packages = readdirSync(join(root, 'packages'))
  .filter((dir) => existsSync(join(root, 'packages', dir, 'package.json')))
  .map((dir) => ({ dir, pkg: readJson(join(root, 'packages', dir, 'package.json')) }))
  .filter(({ pkg }) => !pkg.private)
  .sort((a, b) => a.dir.localeCompare(b.dir))
const core = packages.find(({ pkg }) => pkg.name === '@mephisto/core')
if (!core) throw new Error('pack-test: no packages/core')
// Changesets versions the published packages as one (docs/releasing.md).
const fixed = readJson(join(root, '.changeset', 'config.json')).fixed?.[0] ?? []
for (const { dir, pkg } of packages) {
  if (!existsSync(join(root, 'packages', dir, 'dist')))
    problem(`packages/${dir}`, 'no dist/: run `npx pnpm build` first')
  if (!fixed.includes(pkg.name))
    problem(`packages/${dir}`, `${pkg.name} is not in the "fixed" group of .changeset/config.json`)
}
if (problems.length > 0) finish()

scratch = realpathSync(mkdtempSync(join(tmpdir(), 'mephisto-pack-test-')))
if (scratch.startsWith(root + sep)) throw new Error(`pack-test: ${scratch} is inside the workspace`)
for (let dir = dirname(scratch); dir !== dirname(dir); dir = dirname(dir)) {
  // A package.json or node_modules above the scratch project would leak into its resolution.
  for (const name of ['package.json', 'node_modules'])
    if (existsSync(join(dir, name)))
      throw new Error(`pack-test: ${join(dir, name)} would be seen from ${scratch}; set TMPDIR`)
}
say(`scratch project: ${scratch}`)
const tarballs = given
  ? existsSync(join(given, 'packages'))
    ? join(given, 'packages')
    : given
  : join(scratch, 'tarballs')

// --------------------------------------------------------------------------------------------
// 2. Pack, as pnpm publish would (unless given the tarballs)
// --------------------------------------------------------------------------------------------
if (given) say(`testing the tarballs in ${tarballs}`)
else say(`packing ${packages.map(({ pkg }) => pkg.name).join(', ')}`)
if (!given)
  run(
    'pnpm pack',
    PNPM[0],
    [
      ...PNPM.slice(1),
      '--recursive',
      ...packages.flatMap(({ pkg }) => ['--filter', pkg.name]),
      'pack',
      '--pack-destination',
      tarballs,
    ],
    { cwd: root, quiet: true },
  )
for (const p of packages) {
  p.tarball = join(tarballs, `${p.pkg.name.replace(/^@/, '').replace('/', '-')}-${p.pkg.version}.tgz`)
  if (!existsSync(p.tarball)) problem(p.pkg.name, `no tarball ${p.tarball}`)
}
if (problems.length > 0) finish()

// --------------------------------------------------------------------------------------------
// 3. Each tarball: its files and manifest, publint, attw
// --------------------------------------------------------------------------------------------
for (const p of packages) checkTarball(p)

function checkTarball({ dir, pkg, tarball }) {
  const where = `${pkg.name} tarball`
  const unpacked = join(scratch, 'unpacked', dir)
  mkdirSync(unpacked, { recursive: true })
  run(where, 'tar', ['-xzf', tarball, '-C', unpacked], { quiet: true })
  const base = join(unpacked, 'package')
  const files = listFiles(base)
  const packed = readJson(join(base, 'package.json'))
  const has = (path) => files.includes(path.replace(/^\.\//, ''))

  // Files: what a user needs, nothing of the workspace.
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.cjs'])
    if (!has(f)) problem(where, `${f} is missing`)
  if (has('LICENSE') && readFileSync(join(base, 'LICENSE'), 'utf8') !== LICENSE)
    problem(where, 'LICENSE differs from the repository root LICENSE')
  const stray = files.filter((f) => /^(src|test|bench)\//.test(f) || /\.test(-d)?\.[cm]?[jt]s$/.test(f))
  if (stray.length > 0) problem(where, `ships workspace files: ${stray.slice(0, 5).join(', ')}`)

  // Manifest: metadata, ranges, entry points that exist, no workspace-only condition.
  if (JSON.stringify(packed).includes('workspace:')) problem(where, 'a `workspace:` range was not replaced')
  if (packed.license !== 'MIT') problem(where, `license is ${packed.license}, not MIT`)
  if (packed.engines?.node !== NODE_RANGE)
    problem(where, `engines.node is ${packed.engines?.node}, not the root's ${NODE_RANGE}`)
  if (!packed.repository?.url || packed.repository?.directory !== `packages/${dir}`)
    problem(where, `repository must have a url and directory "packages/${dir}"`)
  if (!packed.homepage) problem(where, 'no homepage')
  if (!packed.bugs?.url) problem(where, 'no bugs.url')
  if (!Array.isArray(packed.keywords) || packed.keywords.length === 0) problem(where, 'no keywords')
  for (const [name, range] of Object.entries(packed.dependencies ?? {}))
    if (!/^\^\d/.test(range)) problem(where, `dependency ${name} is "${range}": use a caret range`)
  const corePeer = packed.peerDependencies?.['@mephisto/core']
  if (corePeer !== undefined && corePeer !== `^${core.pkg.version}`)
    problem(where, `peer @mephisto/core is "${corePeer}", not "^${core.pkg.version}"`)

  const targets = []
  walkExports(packed.exports, [], (conditions, target) => {
    const odd = conditions.filter((c) => !c.startsWith('.') && !CONDITIONS.has(c))
    if (odd.length > 0)
      problem(where, `exports condition "${odd.join('" > "')}" (-> ${target}) must not be published`)
    targets.push(target)
  })
  if (!isDeepStrictEqual(packed.exports, withoutCondition(pkg.exports, SOURCE_CONDITION)))
    problem(
      where,
      `exports differ from the workspace's without "${SOURCE_CONDITION}" (publishConfig.exports?)`,
    )
  targets.push(packed.main, packed.module, packed.types, ...Object.values(packed.bin ?? {}))
  for (const target of targets.filter(Boolean))
    if (!has(target)) problem(where, `${target} is named by package.json but not in the tarball`)

  // Every package dist imports is declared; every declared dependency is imported.
  const declared = new Set([
    ...Object.keys(packed.dependencies ?? {}),
    ...Object.keys(packed.peerDependencies ?? {}),
  ])
  const runtime = importsOf(base, files, /\.(c|m)?js$/)
  const typesToo = importsOf(base, files, /\.d\.(c|m)?ts$/)
  for (const name of new Set([...runtime, ...typesToo]))
    if (!declared.has(name)) problem(where, `dist imports ${name}, which package.json does not declare`)
  for (const name of Object.keys(packed.dependencies ?? {}))
    if (!runtime.has(name) && !typesToo.has(name))
      problem(where, `dependency ${name} is never imported by dist: remove it`)

  const lint = join(root, 'node_modules', '.bin')
  run(`${pkg.name} publint`, join(lint, 'publint'), ['run', tarball, '--strict', '--level', 'warning'], {
    quiet: true,
  })
  run(`${pkg.name} attw`, join(lint, 'attw'), [tarball, '--no-definitely-typed', '--no-emoji'], {
    quiet: true,
  })
  say(`checked ${pkg.name}: ${files.length} files, ${(statSync(tarball).size / 1024).toFixed(0)} kB packed`)
}

function listFiles(dir, prefix = '') {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  )
}

function walkExports(node, conditions, visit) {
  if (typeof node === 'string') visit(conditions, node)
  else if (Array.isArray(node)) for (const n of node) walkExports(n, conditions, visit)
  else if (node && typeof node === 'object')
    for (const [key, value] of Object.entries(node)) walkExports(value, [...conditions, key], visit)
}

function withoutCondition(node, condition) {
  if (!node || typeof node !== 'object') return node
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key]) => key !== condition)
      .map(([key, value]) => [key, withoutCondition(value, condition)]),
  )
}

/**
 * The packages (not node: builtins, not relative paths) that the matching files import, require
 * or resolve (esbuild renames a shadowed require to require2). A require made for another package
 * (`createRequire(itsPackageJson)`) is that package's business and not counted.
 */
function importsOf(base, files, pattern) {
  const names = new Set()
  const specifier =
    /(?:\bfrom\s*|\bimport\s*\(\s*|\b(?:__)?require\d*(?:\.resolve)?\s*\(\s*|^\s*import\s+)["']([^"'./][^"']*)["']/gm
  for (const file of files.filter((f) => pattern.test(f))) {
    for (const [, spec] of readFileSync(join(base, file), 'utf8').matchAll(specifier)) {
      if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) continue
      names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0])
    }
  }
  return names
}

// --------------------------------------------------------------------------------------------
// 4. A user's project: npm install the tarballs
// --------------------------------------------------------------------------------------------
const project = join(scratch, 'consumer')
const devVersion = (name) => rootPkg.devDependencies[name]
mkdirSync(join(project, 'src'), { recursive: true })
writeFileSync(
  join(project, 'package.json'),
  `${JSON.stringify({ name: 'pack-test-consumer', private: true, type: 'module' }, null, 2)}\n`,
)
say(`npm install of the ${packages.length} tarballs, prom-client@${USER_PROM_CLIENT}, typescript, tsx`)
// --ignore-scripts: no dependency needs an install script to work here, and one (rocksdb's
// prebuild check) can start a native compile that takes far longer than this test.
const installed = run(
  'npm install',
  'npm',
  [
    'install',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    '--prefer-offline',
    '--loglevel=error',
    ...packages.map((p) => relative(project, p.tarball)),
    `prom-client@${USER_PROM_CLIENT}`,
    `typescript@${devVersion('typescript')}`,
    `@types/node@${devVersion('@types/node')}`,
    `tsx@${devVersion('tsx')}`,
  ],
  { cwd: project, timeoutMs: 150_000, quiet: true },
)
if (!installed.ok) finish()

// One copy of what a user shares with the packages: @mephisto/core and prom-client.
const nested = (pkgName, dep) => join(project, 'node_modules', pkgName, 'node_modules', dep)
for (const p of packages) {
  if (existsSync(nested(p.pkg.name, '@mephisto/core')))
    problem('npm install', `${p.pkg.name} got a copy of @mephisto/core of its own`)
}
if (existsSync(nested('@mephisto/monitor-prometheus', 'prom-client')))
  problem(
    'npm install',
    `@mephisto/monitor-prometheus installed its own prom-client next to ${USER_PROM_CLIENT}`,
  )

// --------------------------------------------------------------------------------------------
// 5. ESM import and CJS require: the same exports, and the hit counter runs on the testkit
// --------------------------------------------------------------------------------------------
const names = packages.map((p) => p.pkg.name)
const scenario = (load) => `
const mods = {}
for (const name of ${JSON.stringify(names)}) mods[name] = ${load('name')}
const { App, json } = mods['@mephisto/core']
const { TestApp } = mods['@mephisto/testkit']
const { PrometheusMonitor } = mods['@mephisto/monitor-prometheus']
const { DatadogMonitor } = mods['@mephisto/monitor-datadog']
const { rocksdbStore } = mods['@mephisto/store-rocksdb']
const { Registry } = ${load("'prom-client'")}
const main = async () => {
  const app = new App({ id: 'pack-test', logger: 'warn' })
  const registry = new Registry()
  app.sensors.add(new PrometheusMonitor({ registry }))
  const client = { increment() {}, gauge() {}, histogram() {}, timing() {}, distribution() {}, close(cb) { cb?.() } }
  app.sensors.add(new DatadogMonitor({ client }))
  if (typeof rocksdbStore({ path: 'state' }) !== 'object') throw new Error('rocksdbStore() returned no store')
  const hits = app.topic('hit_count', { value: json() })
  const counts = app.table('counts', { default: () => 0, partitions: 1 })
  app.agent(hits, async (stream) => {
    for await (const hit of stream) counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
  })
  const t = await TestApp.start(app)
  await t.send(hits, { key: 'u1', value: { userId: 'u1', hits: 25 } })
  await t.send(hits, { key: 'u1', value: { userId: 'u1', hits: 30 } })
  await t.settle()
  const count = await t.table(counts).get('u1')
  await t.stop()
  if (count !== 2) throw new Error('the hit counter counted ' + count + ', not 2')
  if (registry.getMetricsAsArray().length === 0)
    throw new Error('the Prometheus monitor registered no metric in the user registry')
  const exports = Object.fromEntries(Object.entries(mods).map(([n, m]) => [n, Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort()]))
  process.stdout.write(JSON.stringify(exports))
}
`
writeFileSync(join(project, 'esm.mjs'), `${scenario((n) => `await import(${n})`)}\nawait main()\n`)
writeFileSync(
  join(project, 'cjs.cjs'),
  `(async () => {\n${scenario((n) => `require(${n})`)}\nawait main()\n})().catch((err) => { console.error(err); process.exit(1) })\n`,
)
const esm = run('ESM import', process.execPath, ['esm.mjs'], { cwd: project, timeoutMs: 60_000, quiet: true })
const cjs = run('CJS require', process.execPath, ['cjs.cjs'], {
  cwd: project,
  timeoutMs: 60_000,
  quiet: true,
})
if (esm.ok && cjs.ok) {
  const fromEsm = JSON.parse(esm.output)
  const fromCjs = JSON.parse(cjs.output)
  for (const name of names) {
    if (!isDeepStrictEqual(fromEsm[name], fromCjs[name]))
      problem(name, `ESM exports [${fromEsm[name]}] differ from CJS exports [${fromCjs[name]}]`)
  }
  say(`ESM and CJS: same exports, the hit counter counts on the testkit (${names.length} packages loaded)`)
}

// --------------------------------------------------------------------------------------------
// 6. Types: a small program on the public API of each package, nodenext (ESM and CJS) and bundler
// --------------------------------------------------------------------------------------------
const typesProgram = (load) => `${load}
export interface Hit {
  userId: string
  hits: number
  timestamp: number
}
export const app = new App({ id: 'hit-counter', broker: process.env.KAFKA_BROKERS ?? 'memory://' })
export const hits = app.topic<string, Hit>('hit_count', { value: json<Hit>() })
export const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })
export const countHits = app.agent(hits, async (stream) => {
  for await (const hit of stream) counts.set(hit.userId, (await counts.get(hit.userId)) + hit.hits)
})
// @ts-expect-error the table holds numbers: the types are real, not any
counts.set('u1', 'many')
app.sensors.add(new PrometheusMonitor({ registry: new Registry() }))
app.sensors.add(new DatadogMonitor({ tags: { env: 'test' } }))
export const store: RocksDBStore = rocksdbStore({ path: './state' })
export async function check(): Promise<number> {
  const t: TestApp = await TestApp.start(app)
  await t.send(hits, { key: 'u1', value: { userId: 'u1', hits: 25, timestamp: 0 } })
  await t.settle()
  const count: number = await t.table(counts).get('u1')
  await t.stop()
  return count
}
`
const esmImports = `import { App, json } from '@mephisto/core'
import { DatadogMonitor } from '@mephisto/monitor-datadog'
import { PrometheusMonitor } from '@mephisto/monitor-prometheus'
import { type RocksDBStore, rocksdbStore } from '@mephisto/store-rocksdb'
import { TestApp } from '@mephisto/testkit'
import { Registry } from 'prom-client'`
mkdirSync(join(project, 'types'), { recursive: true })
writeFileSync(join(project, 'types', 'esm.ts'), typesProgram(esmImports))
// In a .cts file nodenext resolves the packages' "require" condition: the .d.cts types.
writeFileSync(join(project, 'types', 'cjs.cts'), typesProgram(esmImports))
const tsconfig = (compilerOptions, include) => ({
  compilerOptions: {
    target: 'ES2023',
    lib: ['ES2023'],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
    verbatimModuleSyntax: false,
    ...compilerOptions,
  },
  include,
})
const configs = {
  nodenext: tsconfig({ module: 'nodenext', moduleResolution: 'nodenext' }, ['types/esm.ts', 'types/cjs.cts']),
  bundler: tsconfig({ module: 'preserve', moduleResolution: 'bundler' }, ['types/esm.ts']),
}
for (const [name, config] of Object.entries(configs)) {
  writeFileSync(join(project, `tsconfig.${name}.json`), `${JSON.stringify(config, null, 2)}\n`)
  const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = run(`types (moduleResolution ${name})`, process.execPath, [tsc, '-p', `tsconfig.${name}.json`], {
    cwd: project,
    quiet: true,
  })
  if (r.ok) say(`types: tsc passes with moduleResolution ${name}`)
}

// --------------------------------------------------------------------------------------------
// 7. The CLI: npx mephisto --help, an app in TypeScript (through tsx) listed and run as a worker,
//    and a worker whose web port is taken
// --------------------------------------------------------------------------------------------
writeFileSync(
  join(project, 'src', 'app.ts'),
  `import { App, json } from '@mephisto/core'

interface Hit {
  userId: string
  hits: number
}
export const app = new App({ id: 'pack-test-cli', broker: 'memory://' })
export const hits = app.topic<string, Hit>('hit_count', { value: json<Hit>() })
export const counts = app.table<string, number>('counts', { default: () => 0, partitions: 1 })
export const countHits = app.agent(hits, async function countHits(stream) {
  for await (const hit of stream) counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
})
`,
)
const npx = (args) => ['npx', ['--no-install', 'mephisto', ...args]]
// Long-running workers get signals straight from here, not through npx (which dies of them).
const bin = (args) => [process.execPath, [join(project, 'node_modules', '.bin', 'mephisto'), ...args]]
const help = run('npx mephisto --help', ...npx(['--help']), { cwd: project, quiet: true })
if (help.ok && !/Usage: mephisto/.test(help.output)) problem('npx mephisto --help', 'printed no usage')
const version = run('npx mephisto --version', ...npx(['--version']), { cwd: project, quiet: true })
if (version.ok && !version.output.includes(core.pkg.version))
  problem('npx mephisto --version', `printed "${version.output}", not ${core.pkg.version}`)
const agents = run('mephisto agents', ...npx(['-A', 'src/app.ts', 'agents']), { cwd: project, quiet: true })
if (agents.ok && !agents.output.includes('countHits'))
  problem('mephisto agents', `does not list countHits:\n${indent(agents.output)}`)
if (help.ok && version.ok && agents.ok) say('CLI: --help, --version and `agents` on a .ts app')

await checkWorker()
await checkPortInUse()

/** `mephisto worker --web-port 0` gets ready, serves /health, and exits 0 on SIGTERM. */
async function checkWorker() {
  const where = 'mephisto worker'
  const worker = start(bin(['-A', 'src/app.ts', 'worker', '--web-port', '0']))
  const ready = await worker.waitFor(/ready: \S+ in [\d.]+ s, web (http:\/\/\S+?)\/?$/m, 60_000)
  if (!ready) {
    worker.kill('SIGKILL')
    return problem(where, `not ready within 60 s:\n${indent(worker.output())}`)
  }
  const health = await fetch(`${ready[1]}/health`).catch((err) => err)
  if (health.status !== 200) problem(where, `GET /health: ${health.status ?? health.message}`)
  worker.kill('SIGTERM')
  const code = await worker.exited(20_000)
  if (code !== 0) problem(where, `SIGTERM: exit ${code}, not 0:\n${indent(worker.output())}`)
  else say(`CLI: a worker got ready, answered ${ready[1]}/health and stopped with exit 0`)
}

/** A worker whose web port is taken fails at once (exit 1), naming the port and the way out. */
async function checkPortInUse() {
  const where = 'mephisto worker (web port in use)'
  const taken = createServer()
  await new Promise((ok) => taken.listen(0, '127.0.0.1', ok))
  const { port } = taken.address()
  const worker = start(bin(['-A', 'src/app.ts', 'worker', '--web-port', String(port)]))
  const code = await worker.exited(60_000)
  taken.close()
  const output = worker.output()
  if (code !== 1) problem(where, `exit ${code}, not 1:\n${indent(output)}`)
  else if (!output.includes(`127.0.0.1:${port}`) || !output.includes('EADDRINUSE'))
    problem(where, `the message does not name 127.0.0.1:${port} and EADDRINUSE:\n${indent(output)}`)
  else say(`CLI: a worker on a taken web port exits 1 naming 127.0.0.1:${port} (EADDRINUSE)`)
}

function start([cmd, args]) {
  const child = spawn(cmd, args, {
    cwd: project,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const listeners = new Set()
  const onData = (chunk) => {
    out += chunk
    for (const l of listeners) l()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  let code
  const exit = new Promise((ok) => child.on('exit', (c, signal) => ok((code = c ?? signal))))
  return {
    output: () => out,
    kill: (signal) => child.kill(signal),
    waitFor: (pattern, ms) =>
      new Promise((ok) => {
        const check = () => {
          const m = pattern.exec(out)
          if (m || code !== undefined) {
            listeners.delete(check)
            clearTimeout(timer)
            ok(m ?? undefined)
          }
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          ok(undefined)
        }, ms)
        listeners.add(check)
        exit.then(check)
        check()
      }),
    exited: (ms) =>
      Promise.race([
        exit,
        new Promise((ok) =>
          setTimeout(() => {
            child.kill('SIGKILL')
            ok(`still running after ${ms / 1000} s`)
          }, ms).unref(),
        ),
      ]),
  }
}

finish()

function finish() {
  const took = `${((Date.now() - started) / 1000).toFixed(0)} s`
  if (problems.length > 0) {
    process.stderr.write(`\npack-test FAILED in ${took}: ${problems.length} problem(s)\n`)
    for (const p of problems) process.stderr.write(`  - ${p.split('\n')[0]}\n`)
    if (scratch) process.stderr.write(`scratch project kept: ${scratch}\n`)
    process.exit(1)
  }
  if (!keep) rmSync(scratch, { recursive: true, force: true })
  else say(`scratch project kept: ${scratch}`)
  say(`OK: ${packages.length} packages packed, installed outside the workspace and checked in ${took}`)
  process.exit(0)
}
