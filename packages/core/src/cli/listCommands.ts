import type { CommandContext } from './context.js'
import { describeAgents, describeTables, describeTopics } from './describe.js'
import { renderTable } from './render.js'

/** `mephisto agents`: the app's agents. */
export function agentsCommand(ctx: CommandContext): number {
  const rows = describeAgents(ctx.app)
  if (ctx.argv.options.json) {
    ctx.output.out(JSON.stringify(rows, null, 2))
    return 0
  }
  ctx.output.out(agentsTable(rows))
  return 0
}

/** `mephisto topics`: the topics the app declares and creates. */
export function topicsCommand(ctx: CommandContext): number {
  const rows = describeTopics(ctx.app)
  if (ctx.argv.options.json) {
    ctx.output.out(JSON.stringify(rows, null, 2))
    return 0
  }
  ctx.output.out(topicsTable(rows))
  return 0
}

/** `mephisto tables` without `--values`: the app's tables. */
export function tablesCommand(ctx: CommandContext): number {
  const rows = describeTables(ctx.app)
  if (ctx.argv.options.json) {
    ctx.output.out(JSON.stringify(rows, null, 2))
    return 0
  }
  ctx.output.out(tablesTable(rows))
  return 0
}

export function agentsTable(rows: ReturnType<typeof describeAgents>): string {
  return renderTable(
    'agents',
    ['name', 'source', 'concurrency', 'on error', 'dead letters'],
    rows.map((a) => [
      a.name,
      `${a.sourceKind === 'channel' ? 'channel ' : ''}${a.source}`,
      String(a.concurrency),
      a.onError,
      a.dlq,
    ]),
  )
}

export function topicsTable(rows: ReturnType<typeof describeTopics>): string {
  return renderTable(
    'topics',
    ['name', 'role', 'partitions', 'read by'],
    rows.map((t) => [t.name, t.role, String(t.partitions), t.agents.join(', ')]),
  )
}

export function tablesTable(rows: ReturnType<typeof describeTables>): string {
  return renderTable(
    'tables',
    ['name', 'partitions', 'changelog', 'store', 'windows'],
    rows.map((t) => [t.name, String(t.partitions), t.changelog, t.store, t.windows.join('; ')]),
  )
}
