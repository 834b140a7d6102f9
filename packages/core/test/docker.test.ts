// docker/ as far as it can be checked without a Docker engine (there is none on these machines or
// in CI): the worker image's last stage (non-root, a HEALTHCHECK, only the deployed app), the
// health check script against a real HTTP server, and the compose file's mounts and Grafana's
// provisioning against the files they name. Building the image and `docker compose up` are not
// tested here (docs/deployment.md says what was checked how).
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { dirname, join, posix } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { repoDir } from './cliProcess.js'

const docker = join(repoDir, 'docker')
const read = (path: string): string => readFileSync(join(docker, path), 'utf8')

/** The lines of a YAML block: `name:` at `indent` spaces, up to the next key at that indent or less. */
function block(yaml: string, name: string, indent: number): string {
  const lines = yaml.split('\n')
  const start = lines.indexOf(`${' '.repeat(indent)}${name}:`)
  if (start < 0) throw new Error(`no ${name}: at indent ${indent}`)
  const end = lines.findIndex((l, i) => i > start && /^\s*[^\s#-]/.test(l) && l.search(/\S/) <= indent)
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n')
}

/** A scalar `key: value` of a YAML block (quotes and a trailing comment removed). */
function scalar(yaml: string, key: string): string | undefined {
  const m = new RegExp(`^\\s*${key}:\\s*(.+?)\\s*(?:#.*)?$`, 'm').exec(yaml)?.[1]
  return m?.replace(/^(["'])(.*)\1$/, '$2')
}

/** `- ./host/path:/container/path[:ro]` volume lines: host path (relative to docker/) -> container path. */
function mounts(yaml: string): Map<string, string> {
  const found = new Map<string, string>()
  for (const m of yaml.matchAll(/^\s*-\s*(\.\/[^:\s]+):(\/[^:\s]+)(?::ro)?\s*$/gm)) found.set(m[1]!, m[2]!)
  return found
}

describe('the worker image (docker/Dockerfile)', () => {
  const stages = read('Dockerfile')
    .split(/^(?=FROM )/m)
    .slice(1)
  const worker = stages.at(-1)!

  it('its last stage is the worker: non-root, a HEALTHCHECK on /health, nothing but the deployed app', () => {
    expect(worker).toMatch(/^FROM \S+ AS worker\n/)
    const user = /^USER (\S+)$/m.exec(worker)?.[1]
    expect(user).toBeDefined()
    expect(['root', '0']).not.toContain(user)
    expect(worker).toMatch(/^HEALTHCHECK .*CMD \["node", "healthcheck\.mjs"\]$/m)
    expect(worker).toMatch(/^COPY docker\/healthcheck\.mjs \/app\/healthcheck\.mjs$/m)
    expect(worker).toMatch(/MEPHISTO_HEALTHCHECK_URL=http:\/\/127\.0\.0\.1:6066\/health/)
    // From the build stage only pnpm deploy's output: no sources, bench, chaos or compilers.
    const copies = [...worker.matchAll(/^COPY --from=(\S+) (\S+) /gm)].map((m) => `${m[1]} ${m[2]}`)
    expect(copies).toEqual(['build /out/worker'])
    expect(read('Dockerfile')).toMatch(/deploy --prod --legacy \/out\/worker/)
    // By number, so a platform can check it is not root; the state directory is that user's.
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/)
    expect(worker).toContain(`chown ${user} /data`)
  })

  it('the compose services build the worker and producer targets', () => {
    const compose = read('docker-compose.yml')
    const services = block(compose, 'services', 0)
    expect(scalar(block(services, 'worker', 2), 'target')).toBe('worker')
    expect(scalar(block(services, 'producer', 2), 'target')).toBe('producer')
    for (const stage of ['worker', 'producer'])
      expect(stages.some((s) => s.includes(` AS ${stage}\n`))).toBe(true)
  })
})

describe("the image's health check (docker/healthcheck.mjs)", () => {
  const run = (url: string): Promise<number> =>
    promisify(execFile)(process.execPath, [join(docker, 'healthcheck.mjs')], {
      env: { ...process.env, MEPHISTO_HEALTHCHECK_URL: url, MEPHISTO_HEALTHCHECK_TIMEOUT_MS: '2000' },
    }).then(
      () => 0,
      (err: { code: number }) => err.code,
    )

  it('exits 0 when /health answers 200, 1 on 503 or when nothing answers', async () => {
    let status = 200
    const paths: string[] = []
    const server = createServer((req, res) => {
      paths.push(req.url ?? '')
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`
    try {
      expect(await run(url)).toBe(0)
      status = 503
      expect(await run(url)).toBe(1)
      expect(paths).toEqual(['/health', '/health'])
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    expect(await run(url)).toBe(1)
  })
})

describe('Grafana in the compose stack', () => {
  const compose = read('docker-compose.yml')
  const grafana = block(block(compose, 'services', 0), 'grafana', 2)
  const volumes = mounts(grafana)
  interface Panel {
    datasource?: { uid?: string }
    targets?: { datasource?: { uid?: string } }[]
    panels?: Panel[]
  }
  const dashboard = JSON.parse(read('grafana/dashboard.json')) as {
    templating: {
      list: {
        name: string
        type: string
        query?: string
        current?: { value?: string }
        datasource?: { uid?: string }
      }[]
    }
    panels: Panel[]
  }

  it('every file the compose file mounts exists', () => {
    const all = mounts(compose)
    expect(all.size).toBeGreaterThanOrEqual(3)
    for (const host of all.keys()) expect(existsSync(join(docker, host)), host).toBe(true)
  })

  it('provisions the dashboard file from the folder its provider reads, as the home page', () => {
    expect(volumes.get('./grafana/provisioning')).toBe('/etc/grafana/provisioning')
    const target = volumes.get('./grafana/dashboard.json')
    expect(target).toBeDefined()
    const provider = read('grafana/provisioning/dashboards/mephisto.yml')
    expect(scalar(provider, 'type')).toBe('file')
    expect(scalar(provider, 'path')).toBe(posix.dirname(target!))
    expect(scalar(grafana, 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH')).toBe(target)
  })

  it("provisions the Prometheus data source the dashboard's queries use, by uid", () => {
    const source = read('grafana/provisioning/datasources/prometheus.yml')
    expect(scalar(source, 'type')).toBe('prometheus')
    const url = new URL(scalar(source, 'url')!)
    expect(url.hostname).toBe('prometheus')
    expect(block(compose, 'services', 0)).toMatch(/^ {2}prometheus:$/m)
    const uid = scalar(source, 'uid')!
    const variable = dashboard.templating.list.find((v) => v.type === 'datasource')!
    expect(variable).toMatchObject({ name: 'datasource', query: 'prometheus', current: { value: uid } })
    // Every panel (in rows too), query and query variable reads through that variable, or names
    // the data source itself.
    const used = new Set<string | undefined>()
    const visit = (panel: Panel): void => {
      if (panel.datasource) used.add(panel.datasource.uid)
      for (const t of panel.targets ?? []) if (t.datasource) used.add(t.datasource.uid)
      for (const p of panel.panels ?? []) visit(p)
    }
    for (const panel of dashboard.panels) visit(panel)
    for (const v of dashboard.templating.list) if (v.datasource) used.add(v.datasource.uid)
    expect(used.size).toBeGreaterThan(0)
    for (const u of used) expect([`\${${variable.name}}`, uid]).toContain(u)
  })

  it('every provisioning file is one Grafana reads (apiVersion 1, under datasources/ or dashboards/)', () => {
    for (const file of ['datasources/prometheus.yml', 'dashboards/mephisto.yml']) {
      const text = read(join('grafana/provisioning', file))
      expect(scalar(text, 'apiVersion'), file).toBe('1')
      expect(dirname(file)).toMatch(/^(datasources|dashboards)$/)
    }
  })
})
