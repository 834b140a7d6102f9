import type { Table } from '../tables/table.js'
import type { Transport } from '../transport/transport.js'
import type { CommandContext } from './context.js'
import { onMemoryBroker, openTransport } from './context.js'
import { UsageError } from './exitCodes.js'
import { renderTable } from './render.js'

/**
 * `mephisto tables --values [name...]`: each table's state as its changelog holds it (the latest
 * value per key, tombstones removing keys): what a worker recovers on start. Read from the
 * broker, so it works with no worker running, and shows what a graceful stop committed.
 */
export async function tableValuesCommand(ctx: CommandContext): Promise<number> {
  const { app, argv, output } = ctx
  const names = argv.args
  const unknown = names.filter((n) => !app.tables.some((t) => t.name === n))
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown table ${unknown.map((n) => JSON.stringify(n)).join(', ')}; app ${app.id} has ${app.tables.map((t) => t.name).join(', ') || 'no tables'}`,
      'tables',
    )
  }
  // Named, any table; unnamed, the app's own (not the engine's, such as a window's stream time).
  const tables =
    names.length > 0
      ? app.tables.filter((t) => names.includes(t.name))
      : app.tables.filter((t) => !t.options.internal)
  if (onMemoryBroker(app)) {
    output.err('note: memory:// holds nothing between processes; pass --broker to read a Kafka changelog')
  }
  const transport = await openTransport(ctx)
  try {
    const result: Record<string, Record<string, unknown>> = {}
    for (const table of tables) result[table.name] = await readTable(transport, table)
    if (argv.options.json) {
      output.out(JSON.stringify(result, null, 2))
    } else {
      for (const [name, values] of Object.entries(result)) {
        const rows = Object.entries(values)
          .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
          .map(([k, v]) => [JSON.stringify(k).slice(1, -1), JSON.stringify(v) ?? 'undefined'])
        output.out(renderTable(`${name} (${rows.length} keys)`, ['key', 'value'], rows))
      }
    }
    return 0
  } finally {
    await transport.close()
  }
}

/** Replays a table's changelog into a plain object of storage key -> decoded value. */
export async function readTable(
  transport: Transport,
  table: Table<any, any>,
): Promise<Record<string, unknown>> {
  const topic = table.changelogTopic
  const values = new Map<string, unknown>()
  if ((await transport.admin.partitionCount(topic)) === undefined) return {}
  const [starts, ends] = await Promise.all([
    transport.admin.startOffsets(topic),
    transport.admin.endOffsets(topic),
  ])
  const ranges = [...ends].map(([partition, to]) => ({ partition, from: starts.get(partition) ?? 0, to }))
  await transport.read(
    topic,
    ranges.filter((r) => r.to > r.from),
    (records) => {
      for (const r of records) {
        if (r.key === null) continue
        const key = table.storageKeyFromBytes(r.key)
        if (r.value === null) values.delete(key)
        else values.set(key, table.valueCodec.decode(r.value))
      }
    },
  )
  return Object.fromEntries(values)
}
