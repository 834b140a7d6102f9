/**
 * Reading a request's body within the server's limit, and telling a body too large or a client
 * gone from a body read.
 */
import type { IncomingMessage } from 'node:http'

/** The largest request body a page gets. */
export const MAX_BODY_BYTES = 1 << 20

export const TOO_LARGE: unique symbol = Symbol('too large')
export const GONE: unique symbol = Symbol('client gone')

/**
 * The body as text; TOO_LARGE as soon as it passes the limit (by its Content-Length or by what
 * arrived), leaving the rest unread; GONE when the client went away before the end.
 */
export function readBody(req: IncomingMessage): Promise<string | typeof TOO_LARGE | typeof GONE> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.resolve(TOO_LARGE)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (result: string | typeof TOO_LARGE | typeof GONE): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      req.off('error', onClose)
      resolve(result)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        req.pause()
        done(TOO_LARGE)
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = (): void => done(Buffer.concat(chunks).toString('utf8'))
    const onClose = (): void => done(GONE)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('close', onClose)
    req.on('error', onClose)
  })
}
