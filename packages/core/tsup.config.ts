import { defineConfig } from 'tsup'

export default defineConfig({
  // One build for both entries, so dist/cli.js and dist/index.js share chunks: an app that
  // imports '@mephisto/core' and the CLI that loads it then see one App class and one memory
  // broker. The CommonJS copy of the CLI is a by-product; the bin is the ESM one.
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  sourcemap: true,
  clean: true,
  target: 'node22',
  // import.meta.url in the CommonJS build (the CLI reads its version next to it).
  shims: true,
})
