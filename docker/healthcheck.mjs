// The image's HEALTHCHECK: GET the worker's /health (open without the web token) with node itself,
// as the image has no curl. Exit 0 when it answers 2xx (ready), 1 otherwise (starting, recovering,
// stopping, degraded, not answering within MEPHISTO_HEALTHCHECK_TIMEOUT_MS).
//   MEPHISTO_HEALTHCHECK_URL         default http://127.0.0.1:6066/health (set it with another --web-port)
//   MEPHISTO_HEALTHCHECK_TIMEOUT_MS  default 4000 (below the HEALTHCHECK's --timeout)
const url = process.env.MEPHISTO_HEALTHCHECK_URL || 'http://127.0.0.1:6066/health'
const timeoutMs = Number(process.env.MEPHISTO_HEALTHCHECK_TIMEOUT_MS) || 4000

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  if (!res.ok) process.stderr.write(`${url}: ${res.status} ${await res.text()}\n`)
  process.exit(res.ok ? 0 : 1)
} catch (err) {
  process.stderr.write(`${url}: ${err?.cause?.code ?? err?.name ?? 'error'} ${err?.message ?? err}\n`)
  process.exit(1)
}
