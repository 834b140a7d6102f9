// The dependency rule of the monorepo (STYLE.md, "Packages and boundaries"), as data and one
// pure check: a graph of source files and their import specifiers in, violations out.
// scripts/check-layers.mjs runs it on the repo; packages/core/test/layers.test.ts tests it.
// It reads no types and resolves no packages: import specifiers are found by regex.
import { readdirSync, readFileSync } from 'node:fs'
import { join, posix } from 'node:path'

/**
 * The layers of packages/core/src, by top folder (or top-level file), lowest first. A file may
 * import files of its own folder or of a lower rank only; the model folders share a rank and
 * may import each other (but not in a cycle, see below).
 */
export const LAYERS = {
  base: 0,
  transport: 1, // transport.ts, partitioner.ts, createTransport.ts, memory/, kafka/
  sensors: 2,
  topics: 3,
  stores: 3,
  streams: 3,
  tables: 3,
  agents: 3,
  joins: 3,
  web: 4,
  worker: 5,
  app: 6,
  cli: 7,
  'index.ts': 8,
}

/** The model: these folders may import each other, though not in a cycle of folders. */
export const MODEL = ['topics', 'stores', 'streams', 'tables', 'agents', 'joins']

/**
 * What the model may import besides base and other model folders: the contracts, never a
 * broker (transport/memory, transport/kafka, createTransport) or the sensor machinery.
 */
export const MODEL_MAY_IMPORT = ['transport/transport.ts', 'transport/partitioner.ts', 'sensors/sensor.ts']

/** The package whose src is layered; every other package and app is a plug-in of it. */
export const CORE = 'packages/core'

/** The npm scope of the workspace's packages, each named after its folder. */
const SCOPE = '@mephisto/'
const SOURCE = /\.(ts|tsx|mts|js|mjs)$/
const TEST = /\.test(-d)?\.(ts|tsx|mts|js|mjs)$/
const RESOLVE_SUFFIXES = ['', '.ts', '.tsx', '.mts', '.js', '.mjs', '/index.ts', '/index.tsx']

/**
 * @typedef {{ specifier: string, typeOnly: boolean }} Import
 * @typedef {{ path: string, imports: Import[] }} SourceFile  path: repo-relative, '/'-separated
 * @typedef {{ file: string, specifier: string, rule: string }} Violation
 */

// Statements start a line; a line opening with `*` or `//` (comments, JSDoc examples) is skipped.
const STATIC_PATTERNS = [
  // import x from '…', import { a, type b } from '…', import * as n from '…', import type …
  /^[ \t]*import\s+(type\s+)?(?:[\w$]+\s*,?\s*)?(?:\{[^}]*\}|\*\s*as\s+[\w$]+)?\s*from\s*(['"])([^'"\n]+)\2/gm,
  // export { a } from '…', export type { A } from '…', export * from '…', export * as n from '…'
  /^[ \t]*export\s+(type\s+)?(?:\*(?:\s*as\s+[\w$]+)?|\{[^}]*\})\s*from\s*(['"])([^'"\n]+)\2/gm,
  // import '…' (side effects only; the empty group keeps the specifier third, as above)
  /^[ \t]*import()\s*(['"])([^'"\n]+)\2/gm,
]
// import('…') with a literal specifier, in code or in a type (`typeof import('…')`).
const DYNAMIC_PATTERN = /\bimport\(\s*(['"])([^'"\n]+)\1\s*\)/g

/** @param {string} source @returns {Import[]} the import specifiers of a TypeScript/JavaScript file */
export function parseImports(source) {
  /** @type {Import[]} */
  const out = []
  for (const pattern of STATIC_PATTERNS) {
    for (const m of source.matchAll(pattern)) out.push({ specifier: m[3], typeOnly: Boolean(m[1]) })
  }
  for (const m of source.matchAll(DYNAMIC_PATTERN)) {
    const lineStart = source.lastIndexOf('\n', m.index) + 1
    const before = source.slice(lineStart, m.index).trimStart()
    if (before.startsWith('*') || before.startsWith('//') || before.startsWith('/*')) continue
    out.push({ specifier: m[2], typeOnly: false })
  }
  return out
}

/** @param {string} path @returns {boolean} a source file the rule applies to (not a test) */
export function isChecked(path) {
  return SOURCE.test(path) && !TEST.test(path) && !path.endsWith('.d.ts')
}

/**
 * Reads the graph of the repo at `root`: the non-test source files under packages/<x>/src and
 * apps/<x>/src with their imports.
 * @param {string} root @returns {SourceFile[]}
 */
export function readGraph(root) {
  /** @type {SourceFile[]} */
  const files = []
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(path)
      } else if (isChecked(path)) {
        files.push({ path, imports: parseImports(readFileSync(join(root, path), 'utf8')) })
      }
    }
  }
  for (const group of ['packages', 'apps']) {
    for (const pkg of readdirSync(join(root, group), { withFileTypes: true })) {
      if (!pkg.isDirectory()) continue
      const src = join(root, group, pkg.name, 'src')
      try {
        readdirSync(src)
      } catch {
        continue
      }
      walk(`${group}/${pkg.name}/src`)
    }
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** 'packages/core' for 'packages/core/src/x.ts' */
function packageOf(path) {
  return path.split('/').slice(0, 2).join('/')
}

/** '@mephisto/core' for 'packages/core' (every workspace package is named after its folder) */
function packageName(pkg) {
  return SCOPE + pkg.split('/')[1]
}

/** 'tables/table.ts' for 'packages/core/src/tables/table.ts'; undefined outside core's src */
function coreRelative(path) {
  const prefix = `${CORE}/src/`
  return path.startsWith(prefix) ? path.slice(prefix.length) : undefined
}

/** The layer key of a path relative to core's src: its top folder, or the file at the top. */
function layerOf(rel) {
  return rel.split('/')[0]
}

function rankText(layer) {
  return layer in LAYERS ? `${layer} (${LAYERS[layer]})` : `${layer} (no rank)`
}

/**
 * The file a relative specifier names, from the files of the graph (`./x.js` finds `x.ts`, as
 * TypeScript's NodeNext resolution does), else the normalized path with a `.js` read as `.ts`.
 */
function resolveRelative(from, specifier, known) {
  const target = posix.normalize(posix.join(posix.dirname(from), specifier))
  const stem = target.replace(/\.(m?js|jsx)$/, '')
  for (const base of stem === target ? [target] : [target, stem]) {
    for (const suffix of RESOLVE_SUFFIXES) {
      if (known.has(base + suffix)) return { path: base + suffix, known: true }
    }
  }
  return { path: stem === target ? target : `${stem}.ts`, known: false }
}

/**
 * Checks the dependency rule on a graph of source files. Paths are repo-relative with '/'.
 *
 * - Layers of packages/core/src ({@link LAYERS}), and the model's narrower reach ({@link MODEL_MAY_IMPORT}).
 * - No cycle between files (type-only imports count), none between the model folders.
 * - Other packages and apps import Mephisto code only as `@mephisto/<pkg>`: no subpath, no
 *   relative path into another package; core imports no other Mephisto package.
 * - No file imports its own package's index.ts (or its own package by name).
 *
 * @param {SourceFile[]} files
 * @returns {{ violations: Violation[], files: number, edges: number }}
 */
export function checkLayers(files) {
  const known = new Set(files.map((f) => f.path))
  /** @type {Violation[]} */
  const violations = []
  /** @type {Map<string, { to: string, specifier: string }[]>} resolved edges between files */
  const edges = new Map()
  let checked = 0
  const report = (file, specifier, rule) => violations.push({ file, specifier, rule })

  for (const file of files) {
    const pkg = packageOf(file.path)
    const out = []
    edges.set(file.path, out)
    for (const { specifier, typeOnly } of file.imports) {
      const note = typeOnly ? ' (a type-only import still counts)' : ''
      if (specifier.startsWith(SCOPE)) {
        checked++
        const [scope, name, ...subpath] = specifier.split('/')
        const target = `${scope}/${name}`
        if (target === packageName(pkg)) {
          report(file.path, specifier, `imports its own package by name (its index), from inside it${note}`)
        } else if (pkg === CORE) {
          report(file.path, specifier, `core imports no other Mephisto package${note}`)
        } else if (subpath.length > 0) {
          report(file.path, specifier, `import Mephisto code only as ${target}, not a path inside it${note}`)
        }
        continue
      }
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue // a dependency
      checked++
      const target = resolveRelative(file.path, specifier, known)
      if (target.known) out.push({ to: target.path, specifier })
      if (target.path === `${pkg}/src/index.ts` || target.path === `${pkg}/src/index.tsx`) {
        report(file.path, specifier, `imports its own package's index.ts, from inside it${note}`)
        continue
      }
      if (!target.path.startsWith(`${pkg}/`)) {
        report(
          file.path,
          specifier,
          `relative import into another package: import it as ${packageName(packageOf(target.path))}${note}`,
        )
        continue
      }
      const from = coreRelative(file.path)
      if (from === undefined) continue
      const to = coreRelative(target.path)
      if (to === undefined) {
        report(file.path, specifier, `relative import out of ${CORE}/src${note}`)
        continue
      }
      const rule = layerRule(from, to)
      if (rule) report(file.path, specifier, rule + note)
    }
  }

  for (const { cycle, group } of fileCycles(edges)) {
    const shown = cycle.map((e) => coreRelative(e.source) ?? e.source)
    const more = group > cycle.length ? `; ${group} files import each other in all` : ''
    report(cycle[0].source, cycle[0].specifier, `import cycle: ${[...shown, shown[0]].join(' -> ')}${more}`)
  }
  for (const cycle of modelFolderCycles(edges)) {
    const path = [...cycle.map((e) => e.source), cycle[0].source].join(' -> ')
    const via = cycle.map((e) => `${coreRelative(e.file)} imports ${coreRelative(e.imported)}`).join(', ')
    report(cycle[0].file, cycle[0].specifier, `model folder cycle: ${path} (${via})`)
  }

  violations.sort((a, b) =>
    a.file !== b.file ? (a.file < b.file ? -1 : 1) : a.specifier < b.specifier ? -1 : 1,
  )
  return { violations, files: files.length, edges: checked }
}

/** The layer rule for an import inside core's src, both paths relative to src; undefined if allowed. */
function layerRule(from, to) {
  const a = layerOf(from)
  const b = layerOf(to)
  if (!(a in LAYERS)) return `${a} has no layer in scripts/layers.mjs (LAYERS): add it`
  if (!(b in LAYERS)) return `${b} has no layer in scripts/layers.mjs (LAYERS): add it`
  if (a === b) return undefined
  const model = MODEL.includes(a)
  if (model && MODEL.includes(b)) return undefined
  if (LAYERS[b] >= LAYERS[a]) {
    const way = LAYERS[b] > LAYERS[a] ? 'upward' : 'sideways'
    return `${way} import: ${rankText(a)} may import only its own folder and lower layers, not ${rankText(b)}`
  }
  if (model && b !== 'base' && !MODEL_MAY_IMPORT.includes(to)) {
    return `the model (${a}) may import only base, ${MODEL_MAY_IMPORT.join(', ')} and other model folders, not ${to}`
  }
  return undefined
}

/**
 * Strongly connected components of a graph (Tarjan), iteratively so deep graphs do not
 * overflow the stack. Returns the components with more than one node or a self-loop.
 * @param {string[]} nodes @param {(n: string) => string[]} next
 */
function cyclicComponents(nodes, next) {
  const index = new Map()
  const low = new Map()
  const onStack = new Set()
  const stack = []
  const found = []
  let counter = 0
  for (const root of nodes) {
    if (index.has(root)) continue
    const work = [{ node: root, children: next(root), i: 0 }]
    index.set(root, counter)
    low.set(root, counter++)
    stack.push(root)
    onStack.add(root)
    while (work.length > 0) {
      const frame = work[work.length - 1]
      if (frame.i < frame.children.length) {
        const child = frame.children[frame.i++]
        if (!index.has(child)) {
          index.set(child, counter)
          low.set(child, counter++)
          stack.push(child)
          onStack.add(child)
          work.push({ node: child, children: next(child), i: 0 })
        } else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node), index.get(child)))
        }
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent) low.set(parent.node, Math.min(low.get(parent.node), low.get(frame.node)))
      if (low.get(frame.node) !== index.get(frame.node)) continue
      const component = []
      let n
      do {
        n = stack.pop()
        onStack.delete(n)
        component.push(n)
      } while (n !== frame.node)
      if (component.length > 1 || next(frame.node).includes(frame.node)) found.push(component.sort())
    }
  }
  return found
}

/**
 * @typedef {{ source: string, target: string, specifier: string }} Edge  between two nodes of a graph
 */

/**
 * A shortest cycle through `start` inside `component`, as its edges (breadth-first).
 * @template {Edge} E
 * @param {string} start @param {Set<string>} component @param {(node: string) => E[]} out
 * @returns {E[]}
 */
function shortestCycle(start, component, out) {
  /** @type {Map<string, E>} the edge a node was first reached by */
  const via = new Map()
  const queue = [start]
  while (queue.length > 0) {
    const node = queue.shift()
    for (const edge of out(node)) {
      if (!component.has(edge.target)) continue
      if (edge.target === start) {
        const cycle = [edge]
        for (let n = node; n !== start; n = via.get(n).source) cycle.unshift(via.get(n))
        return cycle
      }
      if (!via.has(edge.target)) {
        via.set(edge.target, edge)
        queue.push(edge.target)
      }
    }
  }
  return []
}

/** One shortest cycle per group of files that import each other, from the group's first file. */
function fileCycles(edges) {
  /** @param {string} n @returns {Edge[]} */
  const out = (n) => (edges.get(n) ?? []).map((e) => ({ source: n, target: e.to, specifier: e.specifier }))
  return cyclicComponents([...edges.keys()], (n) => out(n).map((e) => e.target)).map((component) => ({
    cycle: shortestCycle(component[0], new Set(component), out),
    group: component.length,
  }))
}

/**
 * One shortest cycle per group of model folders that import each other; each step carries one
 * import that makes it (`file` imports `imported`).
 */
function modelFolderCycles(edges) {
  /** @type {Map<string, Map<string, { file: string, imported: string, specifier: string }>>} */
  const folders = new Map()
  for (const [file, list] of edges) {
    const a = coreRelative(file)
    if (a === undefined || !MODEL.includes(layerOf(a))) continue
    for (const { to, specifier } of list) {
      const b = coreRelative(to)
      if (b === undefined || !MODEL.includes(layerOf(b)) || layerOf(a) === layerOf(b)) continue
      let targets = folders.get(layerOf(a))
      if (!targets) folders.set(layerOf(a), (targets = new Map()))
      if (!targets.has(layerOf(b))) targets.set(layerOf(b), { file, imported: to, specifier })
    }
  }
  const out = (folder) =>
    [...(folders.get(folder) ?? [])].map(([target, example]) => ({ source: folder, target, ...example }))
  return cyclicComponents([...folders.keys()].sort(), (f) => out(f).map((e) => e.target)).map((component) =>
    shortestCycle(component[0], new Set(component), out),
  )
}

/** @param {Violation} v @returns {string} `file -> import: rule` */
export function formatViolation(v) {
  return `${v.file} -> ${v.specifier}: ${v.rule}`
}
