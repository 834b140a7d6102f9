#!/usr/bin/env node
// Checks the dependency rule of the monorepo (run by `pnpm lint`): the layers of
// packages/core/src, no import cycles, plug-ins and apps importing Mephisto only as
// `@mephisto/<pkg>`, no package importing its own index.ts. The table of layers and the rules
// are at the top of scripts/layers.mjs. Prints each violation as `file -> import: rule` and
// exits 1 if there is any.
import { resolve } from 'node:path'
import { checkLayers, formatViolation, readGraph } from './layers.mjs'

const root = resolve(import.meta.dirname, '..')
const { violations, files, edges } = checkLayers(readGraph(root))
for (const v of violations) process.stdout.write(`${formatViolation(v)}\n`)
if (violations.length > 0) {
  process.stderr.write(
    `check-layers: ${violations.length} violation(s) of the dependency rule (scripts/layers.mjs)\n`,
  )
  process.exit(1)
}
process.stdout.write(`check-layers: OK, ${files} files and ${edges} imports checked\n`)
