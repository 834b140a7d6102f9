import type { Table } from '../tables/table.js'
import { dashboardHtml } from './dashboard.js'
import type { Forwarder } from './forwarding.js'
import type { PageHandler, WebOptions, WebRequest, WebResponse } from './page.js'
import { isPlacement, ownedPartitions as ownedPartitionsOf, placeTableKey } from './placement.js'
import type { WebHost } from './webHost.js'

/** Default `stalledAfterMs`: an agent counts as stalled once one event has taken this long. */
export const STALLED_AFTER_MS = 60_000

function error(status: number, code: string, message: string): WebResponse {
  return { status, body: { error: code, message } }
}

/**
 * The pages every worker serves. All read-only. Table reads go through `table.get` outside an
 * event, so they read the partition the key hashes to (or `?partition=`), as a test would.
 */
export function builtinRoutes(
  host: WebHost,
  options: WebOptions = {},
  forwarder?: Forwarder,
): Record<string, PageHandler> {
  const app = host.app
  const findTable = (name: string): Table<any, any> | undefined => app.tables.find((t) => t.name === name)
  const noTable = (name: string): WebResponse =>
    error(
      404,
      'NO_SUCH_TABLE',
      `no table ${name}; app ${app.id} has ${app.tables.map((t) => t.name).join(', ') || 'no tables'}`,
    )
  const ownedPartitions = (table: Table<any, any>): number[] => ownedPartitionsOf(host, table)

  const stalledAfterMs = options.stalledAfterMs ?? STALLED_AFTER_MS
  /** Agents holding one event longer than `stalledAfterMs`. */
  const stalledAgents = (): { agent: string; oldestEventAgeMs: number }[] =>
    app.agents.flatMap((agent) => {
      const age = host.oldestEventAgeMs(agent.name) ?? 0
      return age > stalledAfterMs ? [{ agent: agent.name, oldestEventAgeMs: age }] : []
    })

  return {
    '/': () => ({
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      body: dashboardHtml(app.id),
    }),

    // Ready means: started, group joined, every assigned table partition recovered. Degraded
    // means running, but an agent has held one event longer than it should (stalled).
    '/health': () => {
      const ready = host.state === 'running'
      const stalled = ready ? stalledAgents() : []
      const ok = ready && stalled.length === 0
      return {
        status: ok ? 200 : 503,
        body: {
          status: ok ? 'ok' : ready ? 'degraded' : host.state,
          ready,
          app: app.id,
          ...(forwarder?.workerId !== undefined && { worker: forwarder.workerId }),
          state: host.state,
          recovering: app.monitor.recovering,
          ...(stalled.length > 0 && { stalled }),
        },
      }
    },

    '/stats': () => app.monitor.snapshot(),

    '/agents': () => {
      const byStream = app.monitor.snapshot().events.byStream
      return app.agents.map((agent) => ({
        name: agent.name,
        source: agent.source.name,
        sourceKind: agent.source.kind,
        concurrency: agent.concurrency,
        onError: typeof agent.onError === 'string' ? agent.onError : 'function',
        dlqTopic: agent.dlqTopic,
        queued: host.queuedEvents(agent.name) ?? 0,
        oldestEventAgeMs: host.oldestEventAgeMs(agent.name) ?? 0,
        eventTimeoutMs: agent.eventTimeoutMs ?? null,
        events: byStream[agent.name] ?? null,
      }))
    },

    '/topics': () => {
      const assigned = new Map<string, number[]>()
      for (const tp of host.assignment()) {
        const list = assigned.get(tp.topic) ?? []
        list.push(tp.partition)
        assigned.set(tp.topic, list)
      }
      const snapshot = app.monitor.snapshot()
      const describe = (name: string, role: string, partitions: number) => ({
        name,
        role,
        partitions,
        assigned: (assigned.get(name) ?? []).sort((a, b) => a - b),
        received: snapshot.messages.receivedByTopic[name] ?? 0,
        sent: snapshot.messages.sentByTopic[name] ?? 0,
      })
      const topics = [...app.topics.values()].map((t) =>
        describe(
          t.name,
          t.options.internal ? 'internal' : 'topic',
          t.options.partitions ?? app.topicPartitions,
        ),
      )
      for (const t of app.tables) topics.push(describe(t.changelogTopic, 'changelog', t.partitions))
      const dlqs = new Set(app.agents.map((a) => a.dlqTopic))
      for (const name of dlqs) topics.push(describe(name, 'dlq', 1))
      return topics
    },

    '/tables': () => {
      const tables = app.monitor.snapshot().tables
      return app.tables.map((t) => ({
        name: t.name,
        partitions: t.partitions,
        changelog: t.changelogTopic,
        owned: ownedPartitions(t),
        stats: tables[t.name] ?? { gets: 0, sets: 0, deletes: 0, lateEvents: 0 },
      }))
    },

    '/tables/:name': (req: WebRequest) => {
      const table = findTable(req.params.name ?? '')
      if (!table) return noTable(req.params.name ?? '')
      return {
        name: table.name,
        partitions: table.partitions,
        changelog: table.changelogTopic,
        owned: ownedPartitions(table),
        stats: app.monitor.snapshot().tables[table.name] ?? { gets: 0, sets: 0, deletes: 0, lateEvents: 0 },
      }
    },

    '/tables/:name/:key': async (req: WebRequest) => {
      const name = req.params.name ?? ''
      const rawKey = req.params.key ?? ''
      const table = findTable(name)
      if (!table) return noTable(name)
      if (host.state !== 'running') {
        return error(503, 'NOT_READY', `table ${name} is not readable yet: the worker is ${host.state}`)
      }
      const placed = placeTableKey(host, table, rawKey, req.query.get('partition'))
      if (!isPlacement(placed)) return placed
      // Owned by another worker of the group: its answer, forwarded (or why there is none).
      const path = `/tables/${encodeURIComponent(name)}/${encodeURIComponent(rawKey)}`
      const elsewhere = await forwarder?.elsewhere(req, placed, path)
      if (elsewhere) return elsewhere
      if (!placed.local) {
        return error(
          421,
          'NOT_OWNED',
          `partition ${placed.partition} of table ${name} is not assigned to this worker (it owns [${ownedPartitions(table).join(', ')}]); ask the worker that owns it`,
        )
      }
      const { key, partition } = placed
      const found = await table.has(key, { partition })
      if (!found && table.options.default === undefined) {
        return error(
          404,
          'NO_SUCH_KEY',
          `table ${name} has no key ${JSON.stringify(rawKey)} in partition ${partition}`,
        )
      }
      const value = await table.get(key, { partition })
      return { table: name, key: rawKey, partition, found, value: value === undefined ? null : value }
    },
  }
}
