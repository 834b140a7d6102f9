import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { SourceFile, Violation } from '../../../scripts/layers.mjs'
import { checkLayers, formatViolation, parseImports, readGraph } from '../../../scripts/layers.mjs'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const repo = readGraph(root)

function file(path: string, ...specifiers: string[]): SourceFile {
  return { path, imports: specifiers.map((specifier) => ({ specifier, typeOnly: false })) }
}

const before = new Set(checkLayers(repo).violations.map(formatViolation))

/** The violations that planting `files` in the repo adds. */
function plant(...files: SourceFile[]): Violation[] {
  return checkLayers([...repo, ...files]).violations.filter((v) => !before.has(formatViolation(v)))
}

describe('the dependency rule (scripts/check-layers.mjs)', () => {
  it('holds in the repo', () => {
    const { violations, files, edges } = checkLayers(repo)
    expect(files).toBeGreaterThan(50)
    expect(edges).toBeGreaterThan(200)
    const lines = violations.map(formatViolation)
    expect(lines, `violations of the dependency rule:\n${lines.join('\n')}`).toEqual([])
  })

  it('reports two files that import each other, type-only imports included', () => {
    const a = file('packages/core/src/base/plantedA.ts', './plantedB.js')
    const b: SourceFile = {
      path: 'packages/core/src/base/plantedB.ts',
      imports: [{ specifier: './plantedA.js', typeOnly: true }],
    }
    expect(plant(a, b)).toEqual([
      {
        file: a.path,
        specifier: './plantedB.js',
        rule: 'import cycle: base/plantedA.ts -> base/plantedB.ts -> base/plantedA.ts',
      },
    ])
  })

  it('reports a plug-in importing a path inside core', () => {
    const deep = file('packages/testkit/src/planted.ts', '@mephisto/core/src/app/app.js', '@mephisto/core')
    const relative = file('packages/testkit/src/plantedRelative.ts', '../../core/src/app/app.js')
    expect(plant(deep, relative).map(formatViolation)).toEqual([
      'packages/testkit/src/planted.ts -> @mephisto/core/src/app/app.js: ' +
        'import Mephisto code only as @mephisto/core, not a path inside it',
      'packages/testkit/src/plantedRelative.ts -> ../../core/src/app/app.js: ' +
        'relative import into another package: import it as @mephisto/core',
    ])
  })

  it('reports an import of a higher layer, and not one of a lower layer', () => {
    const base = file('packages/core/src/base/planted.ts', '../worker/worker.js')
    const worker = file('packages/core/src/worker/planted.ts', '../base/errors.js', '../tables/table.js')
    expect(plant(base, worker).map(formatViolation)).toEqual([
      'packages/core/src/base/planted.ts -> ../worker/worker.js: ' +
        'upward import: base (0) may import only its own folder and lower layers, not worker (5)',
    ])
  })

  it('keeps the model off the brokers, and the model folders out of a cycle', () => {
    const broker = file('packages/core/src/tables/planted.ts', '../transport/memory/memoryBroker.js')
    const topics = file('packages/core/src/topics/planted.ts', '../agents/plantedAgent.js')
    const agents = file('packages/core/src/agents/plantedAgent.ts', '../topics/topic.js')
    const rules = plant(broker, topics, agents).map((v) => v.rule)
    expect(rules).toContain(
      'the model (tables) may import only base, transport/transport.ts, transport/partitioner.ts, ' +
        'sensors/sensor.ts and other model folders, not transport/memory/memoryBroker.ts',
    )
    expect(rules).toContainEqual(
      expect.stringMatching(
        /^model folder cycle: agents -> topics -> agents \(.*topics\/planted\.ts imports agents\/plantedAgent\.ts\)$/,
      ),
    )
  })

  it('finds every form of import, and none in comments', () => {
    const source = [
      "import { a } from './a.js'",
      "import type { B } from './b.js'",
      'import {',
      '  c,',
      '  type D,',
      "} from './c.js'",
      "export { e } from './e.js'",
      "export type { F } from './f.js'",
      "export * from './g.js'",
      "import './h.js'",
      "const i = await import('./i.js')",
      "type J = typeof import('./j.js')",
      " * import { k } from './k.js'",
      "// const l = await import('./l.js')",
      'export { m }',
      "const n = 'from'",
    ].join('\n')
    expect(parseImports(source)).toEqual(
      expect.arrayContaining([
        { specifier: './a.js', typeOnly: false },
        { specifier: './b.js', typeOnly: true },
        { specifier: './c.js', typeOnly: false },
        { specifier: './e.js', typeOnly: false },
        { specifier: './f.js', typeOnly: true },
        { specifier: './g.js', typeOnly: false },
        { specifier: './h.js', typeOnly: false },
        { specifier: './i.js', typeOnly: false },
        { specifier: './j.js', typeOnly: false },
      ]),
    )
    expect(parseImports(source)).toHaveLength(9)
  })
})
