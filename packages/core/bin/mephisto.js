#!/usr/bin/env node
// The `mephisto` command. The CLI itself is the build's dist/cli.js; this file only loads it,
// so that the bin exists as soon as the package is installed (in this repository pnpm links bins
// before anything is built, and would warn about a bin pointing at a missing file).
import { existsSync } from 'node:fs'

const cli = new URL('../dist/cli.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write(
    'mephisto: @mephisto/core is not built (no dist/cli.js). In the Mephisto repository, run\n' +
      '`npx pnpm@10.34.8 build`, or run the CLI from source with `npx pnpm@10.34.8 mephisto ...`.\n',
  )
  process.exit(1)
}
await import(cli.href)
