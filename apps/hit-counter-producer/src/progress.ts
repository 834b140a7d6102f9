import cliProgress from 'cli-progress'

export interface ProgressReporter {
  /** How many events between two `update` calls. */
  readonly every: number
  update(sent: number): void
  stop(): void
}

export interface ProgressOptions {
  total: number
  /** A redrawn progress bar (a terminal), or one plain line per step (logs, CI, pipes). */
  bar: boolean
  out: NodeJS.WritableStream
  now?: () => number
}

/**
 * Reports sending progress with the rate and the time left: a cli-progress bar on a terminal,
 * plain lines (every 5 %) elsewhere, where a redrawn bar would fill a log with escape codes.
 */
export function progressReporter(options: ProgressOptions): ProgressReporter {
  const { total, out } = options
  const now = options.now ?? Date.now
  const started = now()
  const rate = (sent: number): number => Math.round((sent * 1000) / Math.max(1, now() - started))

  if (!options.bar) {
    const every = Math.max(1, Math.floor(total / 20))
    let last = -1
    return {
      every,
      update(sent) {
        if (sent === last) return
        last = sent
        const r = rate(sent)
        const eta = r > 0 && sent < total ? ` eta ${formatSeconds((total - sent) / r)}` : ''
        out.write(`sent ${sent}/${total} (${Math.round((sent / Math.max(1, total)) * 100)}%) ${r}/s${eta}\n`)
      },
      stop() {},
    }
  }

  const bar = new cliProgress.SingleBar(
    {
      format:
        '{bar} {percentage}% | {value}/{total} events | {rate}/s | ETA {eta_formatted} | {duration_formatted}',
      stream: out,
      hideCursor: true,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  )
  bar.start(total, 0, { rate: 0 })
  let stopped = false
  return {
    // Often enough for a smooth bar; cli-progress redraws at most `fps` times a second anyway.
    every: Math.max(1, Math.floor(total / 1000)),
    update(sent) {
      if (!stopped) bar.update(sent, { rate: rate(sent) })
    },
    stop() {
      if (stopped) return
      stopped = true
      bar.stop()
    },
  }
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`
  const m = Math.floor(s / 60)
  return `${m}m${String(Math.ceil(s - m * 60)).padStart(2, '0')}s`
}
