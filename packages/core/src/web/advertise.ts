/**
 * The address the app's other workers reach this worker's web server at (they forward requests
 * for the keys it owns there): `web.advertisedUrl`, checked here, or one derived from where the
 * server listens.
 */
import { networkInterfaces } from 'node:os'
import { ConfigurationError } from '../base/errors.js'

/** Bind addresses that mean "every interface": no peer can use them as an address. */
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0'])

/**
 * `web.advertisedUrl` as an origin (`http://host:port`, no trailing slash), or undefined when it
 * is not set. Throws a ConfigurationError for anything but an http(s) URL without a path.
 */
export function checkAdvertisedUrl(value: unknown): URL | undefined {
  if (value === undefined) return undefined
  let url: URL | undefined
  try {
    url = typeof value === 'string' ? new URL(value) : undefined
  } catch {
    url = undefined
  }
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new ConfigurationError(
      `web.advertisedUrl must be the http(s)://host:port the other workers reach this one at, without a path (got ${JSON.stringify(value)})`,
    )
  }
  return url
}

/**
 * The URL peers use: the advertised one when given; else the bound one, except that a server
 * bound to every interface is advertised at this machine's first non-internal IPv4 address (an
 * IP, so it passes every peer's Host check), or loopback when there is none.
 */
export function advertisedUrlOf(advertised: URL | undefined, boundHost: string, port: number): string {
  if (advertised) return advertised.origin
  let host = boundHost
  if (WILDCARDS.has(boundHost)) host = firstExternalIPv4() ?? '127.0.0.1'
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`
  return `http://${host}:${port}`
}

function firstExternalIPv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return undefined
}
