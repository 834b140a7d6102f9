import { ConfigurationError } from '../base/errors.js'

/** A path pattern such as `/tables/:name/:key`, split once so matching a request is a loop over segments. */
export interface RoutePattern {
  /** The pattern as written, used as the route label in metrics (bounded, unlike raw paths). */
  readonly pattern: string
  readonly segments: readonly ({ literal: string } | { param: string })[]
}

/**
 * Parses a route pattern: it starts with `/`; a segment `:name` captures one path segment. Trailing
 * slashes are ignored, so `/counts/` and `/counts` are the same route.
 */
export function parseRoute(pattern: string): RoutePattern {
  if (typeof pattern !== 'string' || !pattern.startsWith('/')) {
    throw new ConfigurationError(`a page path must start with '/' (got ${JSON.stringify(pattern)})`)
  }
  const segments = splitPath(pattern).map((s) => {
    if (!s.startsWith(':')) return { literal: s }
    const param = s.slice(1)
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(param)) {
      throw new ConfigurationError(`page path ${pattern}: ':${param}' is not a valid parameter name`)
    }
    return { param }
  })
  return { pattern, segments }
}

/** The path's segments, not decoded; empty segments (double or trailing slashes) dropped. */
export function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '')
}

/**
 * Matches decoded request segments against a route; returns the parameters, or undefined when the
 * route does not match.
 */
export function matchRoute(
  route: RoutePattern,
  segments: readonly string[],
): Record<string, string> | undefined {
  if (route.segments.length !== segments.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const want = route.segments[i]!
    const got = segments[i]!
    if ('literal' in want) {
      if (want.literal !== got) return undefined
    } else {
      params[want.param] = got
    }
  }
  return params
}
