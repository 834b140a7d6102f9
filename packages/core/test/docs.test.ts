import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import ts from 'typescript'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { App } from '../src/index.js'

/**
 * Every ```ts block of README.md and docs/*.md is type-checked here, with the repo's strict
 * compiler options and `@mephisto/*` resolved to source, so a sample cannot drift from the API.
 * Blocks marked `run` are executed as well (on the testkit's memory broker) and must assert.
 *
 * Markers, in an HTML comment on the line(s) before a block: `<!-- sample: TOKENS -->`
 *   - `name.ts` (may have folders: `src/app.ts`): the block is written as that file in its
 *     document's sample folder, so other blocks of the same document can import `./name.js`.
 *   - `run`: execute the block too: top-level statements asserting with `expect`, or `test(...)`
 *     cases, both imported from vitest.
 *   - `prelude=NAME`: the block may use the exports of a prelude below without importing them.
 * A block fenced ```ts nocheck is skipped: keep those rare (shapes, not programs).
 */

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')
const samplesDir = join(here, '.docs-samples')

/** Preludes: a module whose exports a `prelude=NAME` block sees. */
const PRELUDES: Record<string, string> = {
  'hit-counter': `import { App, json } from '@mephisto/core'

export interface Hit { userId: string; hits: number; timestamp: number }

export const app = new App({ id: 'hit-counter', logger: 'warn' })
export const hits = app.topic<string, Hit>('hit_count', { value: json<Hit>() })
export const countTopic = app.topic<string, Hit>('count_topic', { internal: true, partitions: 1 })
export const counts = app.table<string, number>('major-count', { default: () => 0, partitions: 1 })

export const countHits = app.agent(hits, async (stream) => {
  for await (const hit of stream) {
    if (hit.hits > 20) await countTopic.send({ key: hit.userId, value: hit })
  }
}, { name: 'countHits' })

export const incrementCount = app.agent(countTopic, async (stream) => {
  for await (const hit of stream) counts.set(hit.userId, (await counts.get(hit.userId)) + 1)
}, { name: 'incrementCount' })
`,
}

interface Sample {
  /** Markdown file, relative to the repo root. */
  doc: string
  /** 1-based line of the block's first code line in the markdown file. */
  line: number
  code: string
  /** Where the block is written (absolute). */
  file: string
  run: boolean
  prelude: string | undefined
  /** Lines added before the code (the prelude import). */
  header: number
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`)
  return ['README.md', ...docs]
}

/** Extracts the ```ts blocks of one markdown file with their markers. */
function extractSamples(doc: string, text: string): Sample[] {
  const lines = text.split('\n')
  const slug = doc.replace(/\.md$/, '').replace(/[^a-zA-Z0-9]+/g, '-')
  const out: Sample[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)(.*)$/.exec(lines[i]!)
    if (!open) continue
    const [, indent = '', fence = '```', lang = '', info = ''] = open
    // Find the closing fence whatever the language, so a non-ts block's body is never parsed.
    let end = i + 1
    while (end < lines.length && !new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`).test(lines[end]!))
      end++
    const body = lines
      .slice(i + 1, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()))
    const isTs = lang === 'ts' || lang === 'typescript'
    if (isTs && !/\bnocheck\b/.test(info)) {
      let tokens: string[] = []
      for (let j = i - 1; j >= 0 && j >= i - 3; j--) {
        const m = /<!--\s*sample:\s*(.*?)\s*-->/.exec(lines[j]!)
        if (m) {
          tokens = m[1]!.split(/[\s,]+/).filter(Boolean)
          break
        }
        if (lines[j]!.trim() !== '' && !lines[j]!.trim().startsWith('<')) break
      }
      const name = tokens.find((t) => /\.tsx?$/.test(t)) ?? `line-${i + 2}.ts`
      if (/\.test\.tsx?$/.test(name))
        throw new Error(
          `${doc}:${i + 1}: name samples *.sample.ts, not *.test.ts (vitest would collect them)`,
        )
      const prelude = tokens.find((t) => t.startsWith('prelude='))?.slice('prelude='.length)
      if (prelude !== undefined && !(prelude in PRELUDES))
        throw new Error(`${doc}:${i + 1}: unknown prelude ${prelude}`)
      out.push({
        doc,
        line: i + 2,
        code: body.join('\n'),
        file: join(samplesDir, slug, name),
        run: tokens.includes('run'),
        prelude,
        header: 0,
      })
    }
    i = end
  }
  return out
}

function preludeFile(name: string): string {
  return join(samplesDir, '_preludes', `${name}.ts`)
}

function preludeExports(name: string): { values: string[]; types: string[] } {
  const src = PRELUDES[name]!
  const values = [...src.matchAll(/^export const (\w+)/gm)].map((m) => m[1]!)
  const types = [...src.matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1]!)
  return { values, types }
}

function writeSamples(samples: Sample[]): void {
  rmSync(samplesDir, { recursive: true, force: true })
  mkdirSync(samplesDir, { recursive: true })
  // Self-ignoring: generated files never reach git.
  writeFileSync(join(samplesDir, '.gitignore'), '*\n')
  for (const [name, src] of Object.entries(PRELUDES)) {
    mkdirSync(dirname(preludeFile(name)), { recursive: true })
    writeFileSync(preludeFile(name), src)
  }
  const seen = new Map<string, Sample>()
  for (const s of samples) {
    const clash = seen.get(s.file)
    if (clash)
      throw new Error(
        `${s.doc}:${s.line}: sample file ${relative(samplesDir, s.file)} is also used at line ${clash.line}`,
      )
    seen.set(s.file, s)
    let header = ''
    if (s.prelude) {
      const { values, types } = preludeExports(s.prelude)
      let spec = relative(dirname(s.file), preludeFile(s.prelude)).replace(/\.ts$/, '.js')
      if (!spec.startsWith('.')) spec = `./${spec}`
      header = `import { ${[...values, ...types.map((t) => `type ${t}`)].join(', ')} } from '${spec}'\n`
    }
    s.header = header.split('\n').length - 1
    mkdirSync(dirname(s.file), { recursive: true })
    // `export {}` makes every block a module: its own scope, and top-level await.
    writeFileSync(s.file, `${header}${s.code}\nexport {}\n`)
  }
}

function compilerOptions(): ts.CompilerOptions {
  const base = ts.readConfigFile(join(root, 'tsconfig.base.json'), ts.sys.readFile)
  if (base.error) throw new Error(ts.flattenDiagnosticMessageText(base.error.messageText, '\n'))
  const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, root)
  const src = (pkg: string): string[] => [join(root, 'packages', pkg, 'src', 'index.ts')]
  return {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    paths: {
      '@mephisto/core': src('core'),
      '@mephisto/testkit': src('testkit'),
      '@mephisto/store-rocksdb': src('store-rocksdb'),
      '@mephisto/monitor-prometheus': src('monitor-prometheus'),
      '@mephisto/monitor-datadog': src('monitor-datadog'),
      '@mephisto/monitor-opentelemetry': src('monitor-opentelemetry'),
    },
  }
}

/** Type errors of the samples, as `doc:line:col TSxxxx message`, mapped back to the markdown. */
function typeErrors(samples: Sample[]): string[] {
  const program = ts.createProgram(
    samples.map((s) => s.file),
    compilerOptions(),
  )
  const errors: string[] = []
  for (const d of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]) {
    errors.push(`compiler: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
  }
  for (const s of samples) {
    const sf = program.getSourceFile(s.file)
    if (!sf) {
      errors.push(`${s.doc}:${s.line}: sample not in the program`)
      continue
    }
    // Only the samples' own diagnostics: the packages' sources are checked by their typecheck.
    for (const d of [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]) {
      const { line, character } = sf.getLineAndCharacterOfPosition(d.start ?? 0)
      const where =
        line < s.header
          ? `${s.doc}:${s.line - 1} (prelude import)`
          : `${s.doc}:${s.line + line - s.header}:${character + 1}`
      errors.push(`${where} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
    }
  }
  return errors
}

const samples = markdownFiles().flatMap((doc) => extractSamples(doc, readFileSync(join(root, doc), 'utf8')))
writeSamples(samples)

// Executed samples start apps through the testkit; stop whatever one leaves running, so a
// sample that forgets `t.stop()` cannot keep the test process alive. Patched at collection
// time: run samples are imported while the suite is collected (below).
const started = new Set<App>()
const originalStart = App.prototype.start
App.prototype.start = function (this: App, ...args: Parameters<App['start']>) {
  started.add(this)
  return originalStart.apply(this, args)
}
// Samples read KAFKA_BROKERS to pick a broker; here they must stay on the memory broker.
const kafkaBrokers = process.env.KAFKA_BROKERS
delete process.env.KAFKA_BROKERS
let failed = false

async function stopStarted(): Promise<void> {
  for (const app of started) if (app.running) await app.stop()
  started.clear()
}
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') failed = true
  await stopStarted()
})
afterAll(async () => {
  await stopStarted()
  App.prototype.start = originalStart
  if (kafkaBrokers !== undefined) process.env.KAFKA_BROKERS = kafkaBrokers
  // Kept after a failure, for a look at the generated files; removed otherwise (lint sees no stray files).
  if (!failed) rmSync(samplesDir, { recursive: true, force: true })
})

describe('docs samples', () => {
  it('finds the samples of README.md and docs/*.md', () => {
    const docs = new Set(samples.map((s) => s.doc))
    for (const doc of [
      'README.md',
      'docs/getting-started.md',
      'docs/streams.md',
      'docs/tables.md',
      'docs/windows.md',
    ]) {
      expect(docs, `${doc} has no checked ts sample`).toContain(doc)
    }
    expect(samples.filter((s) => s.run).map((s) => s.doc)).toEqual(
      expect.arrayContaining(['README.md', 'docs/getting-started.md']),
    )
  })

  // One program for all samples (a second each), reported per markdown file.
  let errors: string[] | undefined
  const errorsOf = (doc: string): string[] => {
    errors ??= typeErrors(samples)
    return errors.filter((e) => e.startsWith(`${doc}:`) || (doc === 'README.md' && e.startsWith('compiler:')))
  }
  for (const doc of [...new Set(samples.map((s) => s.doc))]) {
    it(`type-checks the ts samples of ${doc}`, () => {
      // One line per error, naming the markdown line and column.
      expect(errorsOf(doc).join('\n')).toBe('')
    })
  }
})

// A run sample is imported while its suite is collected: a sample written as a test file
// (`test(...)` from vitest) registers its tests here; a sample of top-level statements runs
// now, and its failure is reported by the test below.
for (const s of samples.filter((x) => x.run)) {
  describe(`runs ${s.doc}:${s.line}`, async () => {
    let failure: unknown
    try {
      await import(pathToFileURL(s.file).href)
    } catch (err) {
      failure = err
    }
    it('runs to the end', () => {
      if (failure !== undefined) {
        failed = true
        throw new Error(
          `the sample at ${s.doc}:${s.line} failed: ${(failure as Error)?.message ?? failure}`,
          {
            cause: failure,
          },
        )
      }
    })
  })
}
