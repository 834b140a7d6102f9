import { ConfigurationError } from '../base/errors.js'
import { Table } from '../tables/table.js'
import { Topic } from '../topics/topic.js'
import type { PageOptions, PageRouteBy } from './page.js'

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

/**
 * Checks the `routeBy` of `app.page(path, handler, { routeBy })`: a table or a topic (not a
 * channel: nothing owns its keys), and a parameter the path has.
 */
export function pageRouteBy(route: RoutePattern, options: PageOptions | undefined): PageRouteBy | undefined {
  const by = options?.routeBy
  if (by === undefined) return undefined
  const where = `app.page(${JSON.stringify(route.pattern)}): routeBy`
  const table = (by as { table?: unknown }).table
  const topic = (by as { topic?: unknown }).topic
  if ((table === undefined) === (topic === undefined)) {
    throw new ConfigurationError(`${where} takes { table, param } or { topic, param }`)
  }
  if (table !== undefined && !(table instanceof Table)) {
    throw new ConfigurationError(`${where}: table must be a table of the app (app.table(...))`)
  }
  if (topic !== undefined && !(topic instanceof Topic)) {
    throw new ConfigurationError(`${where}: topic must be a topic of the app (app.topic(...)), not a channel`)
  }
  const params = route.segments.flatMap((s) => ('param' in s ? [s.param] : []))
  if (!params.includes(by.param)) {
    throw new ConfigurationError(
      `${where}: param ${JSON.stringify(by.param)} is not a parameter of the path (it has ${params.map((p) => `:${p}`).join(', ') || 'none'})`,
    )
  }
  return by
}
