import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let cached: string | undefined

/**
 * The version of @mephisto/core, from its package.json: found by walking up from this file, which
 * sits at src/cli/ in the workspace and at dist/ once built.
 */
export function cliVersion(): string {
  if (cached !== undefined) return cached
  cached = '0.0.0'
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === '@mephisto/core' && pkg.version) {
        cached = pkg.version
        break
      }
    } catch {
      // Not here: look one level up.
    }
    dir = dirname(dir)
  }
  return cached
}
