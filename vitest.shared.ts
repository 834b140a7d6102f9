import { fileURLToPath } from 'node:url'
import type { UserConfig } from 'vitest/config'

const src = (pkg: string, dir = 'packages', entry = 'index.ts'): string =>
  fileURLToPath(new URL(`./${dir}/${pkg}/src/${entry}`, import.meta.url))

/**
 * Shared test config: workspace packages resolve to their source, so a test never runs a stale
 * `dist`. Aliases (not package dependencies) also let core's own tests use the testkit without
 * a dependency cycle.
 */
export const shared: UserConfig = {
  resolve: {
    alias: {
      '@mephisto/core': src('core'),
      '@mephisto/testkit': src('testkit'),
      '@mephisto/store-rocksdb': src('store-rocksdb'),
      '@mephisto/monitor-datadog': src('monitor-datadog'),
      '@mephisto/monitor-prometheus': src('monitor-prometheus'),
      '@mephisto/monitor-opentelemetry': src('monitor-opentelemetry'),
      '@mephisto/transport-platformatic': src('transport-platformatic'),
      '@mephisto/hit-counter-producer': src('hit-counter-producer', 'apps'),
      '@mephisto/hit-counter-worker': src('hit-counter-worker', 'apps', 'app.ts'),
    },
  },
  test: {
    // scripts/test.mjs collects one JSON report per package to print a single summary line.
    reporters: process.env.MEPHISTO_TEST_REPORT_DIR
      ? [
          'default',
          [
            'json',
            {
              outputFile: `${process.env.MEPHISTO_TEST_REPORT_DIR}/${process.cwd().replace(/[^a-zA-Z0-9]+/g, '_')}.json`,
            },
          ],
        ]
      : ['default'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts', 'src/**/*.test-d.ts'] },
  },
}
