#!/usr/bin/env node
// The `mephisto` command, built to dist/cli.js and run by the package's bin (bin/mephisto.js);
// in the workspace it also runs from source:
//   node --conditions=@mephisto/source --import tsx packages/core/src/cli/main.ts
import { drainOutput } from './output.js'
import { runCli } from './program.js'

// kafkajs 2.2.4 arms setTimeout with a negative delay in its request queue (tulios/kafkajs#1751),
// and Node 23+ warns about it in every process that talks to Kafka. Node clamps the delay to
// 1 ms, exactly what older Node did silently, so the warning tells a user nothing: drop that one
// warning and print every other as Node would.
const printWarning = process.listeners('warning')
process.removeAllListeners('warning')
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return
  for (const print of printWarning) print(warning)
})

// No top-level await: the same entry is bundled as CommonJS too.
void runCli(process.argv.slice(2)).then(async (code) => {
  await drainOutput()
  // Exit explicitly: kafkajs and the web server may hold handles after a command is done.
  process.exit(code)
})
