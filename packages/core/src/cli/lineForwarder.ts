/**
 * Hands a child process's output on line by line, so that lines of several workers interleave
 * whole and each can carry the worker's mark. It neither parses nor buffers more than one
 * unfinished line.
 */
import type { Readable } from 'node:stream'

/**
 * Calls `line` for every line `stream` carries (without its line feed), and for an unfinished
 * last line when the stream ends.
 */
export function forwardLines(stream: Readable, line: (text: string) => void): void {
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const parts = (pending + chunk).split('\n')
    pending = parts.pop() ?? ''
    for (const part of parts) line(part.endsWith('\r') ? part.slice(0, -1) : part)
  })
  stream.on('end', () => {
    if (pending !== '') line(pending)
    pending = ''
  })
}

/** `[w<index>] `: the mark of a pool's worker on each line it prints. */
export function workerMark(index: number): string {
  return `[w${index}] `
}
