/**
 * Who may ask the web server: the Host allow-list (against DNS rebinding) and the bearer token.
 * Pure checks on request headers, run before any route; it does not answer requests itself.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { ConfigurationError } from '../base/errors.js'
import type { WebOptions } from './page.js'

/** Names that always reach this machine, whatever DNS says: allowed as Host by default. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1']

/** Bind addresses that mean "every interface", so they name no host a client would use. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0'])

/** The realm named in `WWW-Authenticate`. */
const REALM = 'mephisto'

/** A Host header value, lowered, without port, brackets or trailing dot; undefined for junk. */
export function hostName(header: string): string | undefined {
  let host = header.trim().toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    if (end < 0) return undefined
    const rest = host.slice(end + 1)
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined
    host = host.slice(1, end)
  } else {
    const colon = host.lastIndexOf(':')
    if (colon >= 0) {
      if (!/^\d{1,5}$/.test(host.slice(colon + 1))) return undefined
      host = host.slice(0, colon)
    }
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  return host === '' ? undefined : host
}

/** Whether `host` (a bind address or a name) is this machine's loopback only. */
export function isLoopbackHost(host: string): boolean {
  const name = normalizeName(host) ?? ''
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}

/**
 * Decides on the `Host` header of a request. Allowed: the loopback names, any IP literal (DNS
 * rebinding needs a name the attacker controls; a browser sends an IP only when the page itself
 * came from that IP), the bound host when it is not a wildcard, and `allowedHosts` (`'*'` allows
 * any; `.example.com` allows example.com and its subdomains). A request without a Host header is
 * HTTP/1.0 and not from a browser (browsers always send one), so not a rebinding: allowed.
 */
export class HostAllowList {
  private readonly names = new Set<string>(LOOPBACK_NAMES)
  private readonly suffixes: string[] = []
  private readonly any: boolean

  constructor(boundHost: string, allowedHosts: readonly string[] = []) {
    const bound = normalizeName(boundHost)
    if (bound !== undefined && !WILDCARD_HOSTS.has(bound)) this.names.add(bound)
    this.any = allowedHosts.includes('*')
    for (const entry of allowedHosts) {
      if (entry === '*') continue
      const name = normalizeName(entry)
      if (name === undefined) continue
      if (name.startsWith('.')) {
        this.suffixes.push(name)
        this.names.add(name.slice(1))
      } else {
        this.names.add(name)
      }
    }
  }

  /** Whether every Host is allowed (`allowedHosts: ['*']`). */
  get allowsAny(): boolean {
    return this.any
  }

  allows(header: string | undefined): boolean {
    if (header === undefined) return true
    if (this.any) return true
    const name = hostName(header)
    if (name === undefined) return false
    if (isIP(name) !== 0 || this.names.has(name)) return true
    return this.suffixes.some((suffix) => name.endsWith(suffix))
  }
}

/**
 * An allowedHosts entry or a bind address as a bare lower-case name: no port (`worker:6066` is
 * `worker`), no brackets, no dot at the end. A bare IPv6 address (`::1`) is taken as it is.
 */
function normalizeName(entry: string): string | undefined {
  const trimmed = entry.trim().toLowerCase()
  if (!trimmed.startsWith('[') && trimmed.indexOf(':') !== trimmed.lastIndexOf(':')) return trimmed
  return hostName(trimmed)
}

/**
 * Checks the `Authorization` header against the token in constant time (both sides hashed
 * first, so neither the length nor a common prefix shows in the timing). Accepted:
 * `Bearer <token>`, and for GET and HEAD also `Basic` with any user name and the token as the
 * password, which is what a browser sends after its login prompt (the dashboard). Basic is not
 * accepted for other methods: a browser re-sends it on its own, so another site could use it to
 * post to a custom page.
 */
export class TokenCheck {
  private readonly expected: Buffer

  constructor(token: string) {
    this.expected = digest(token)
  }

  allows(header: string | undefined, method: string): boolean {
    if (header === undefined) return false
    const space = header.indexOf(' ')
    if (space < 0) return false
    const scheme = header.slice(0, space).toLowerCase()
    const credentials = header.slice(space + 1).trim()
    let given: string
    if (scheme === 'bearer') {
      given = credentials
    } else if (scheme === 'basic' && (method === 'GET' || method === 'HEAD')) {
      const decoded = Buffer.from(credentials, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon < 0) return false
      given = decoded.slice(colon + 1)
    } else {
      return false
    }
    return timingSafeEqual(this.expected, digest(given))
  }

  /** The challenges of a 401: Bearer for clients, Basic so a browser shows its login prompt. */
  static challenges(): string[] {
    return [`Bearer realm="${REALM}"`, `Basic realm="${REALM}", charset="UTF-8"`]
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

/** Checks `token` and `allowedHosts` of the web options; throws a ConfigurationError naming the option. */
export function validateAccessOptions(options: WebOptions): void {
  const { token, allowedHosts } = options
  if (token !== undefined && (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token))) {
    throw new ConfigurationError(
      'web.token must be a non-empty string of printable ASCII without spaces (it travels in an HTTP header)',
    )
  }
  if (
    allowedHosts !== undefined &&
    (!Array.isArray(allowedHosts) || !allowedHosts.every((h) => typeof h === 'string' && h.trim() !== ''))
  ) {
    throw new ConfigurationError(
      `web.allowedHosts must be an array of host names (got ${JSON.stringify(allowedHosts)}); '*' allows any`,
    )
  }
}
