import { HEADERS } from '../base/headers.js'
import type { Headers, RawRecord, Transport } from '../transport/transport.js'
import { intOption, stringOption } from './args.js'
import type { CommandContext } from './context.js'
import { openTransport } from './context.js'
import { topicSpec } from './describe.js'
import { CliFailure, UsageError } from './exitCodes.js'

/** Headers the dead-letter path adds to a record; replay removes them to restore the original. */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  HEADERS.error,
  HEADERS.errorCode,
  HEADERS.errorClass,
  HEADERS.sourceTopic,
  HEADERS.sourcePartition,
  HEADERS.sourceOffset,
  HEADERS.sourceTimestamp,
  HEADERS.agent,
  HEADERS.failedAt,
])

/** The original headers of a dead-lettered record. */
export function originalHeaders(headers: Headers): Headers {
  const out: Headers = {}
  for (const [k, v] of Object.entries(headers)) {
    if (!DEAD_LETTER_HEADERS.has(k) && !k.startsWith(`${HEADERS.error}`)) out[k] = v
  }
  return out
}

/**
 * `mephisto dlq replay <dlq-topic>`: sends each dead letter's original key, value, headers and
 * timestamp back to its source topic (from the `mephisto-source-topic` header) or to `--to`.
 * The timestamp is kept so windowed tables count the event in the window it belongs to.
 */
export async function dlqCommand(ctx: CommandContext): Promise<number> {
  const { app, argv, output } = ctx
  const [sub, dlq, ...extra] = argv.args
  if (sub !== 'replay') {
    throw new UsageError(
      `dlq needs a subcommand: mephisto dlq replay <dlq-topic>${sub ? ` (got ${JSON.stringify(sub)})` : ''}`,
      'dlq',
    )
  }
  if (dlq === undefined)
    throw new UsageError('dlq replay needs the dead-letter topic: mephisto dlq replay <dlq-topic>', 'dlq')
  if (extra.length > 0)
    throw new UsageError(`dlq replay takes one topic (got extra ${extra.join(' ')})`, 'dlq')
  const to = stringOption(argv.options, 'to')
  const limit = intOption(argv.options, 'limit', Number.POSITIVE_INFINITY, 'dlq', 1)

  const transport = await openTransport(ctx)
  try {
    if ((await transport.admin.partitionCount(dlq)) === undefined) {
      const known = [...new Set(app.agents.map((a) => a.dlqTopic))].join(', ') || 'none'
      throw new CliFailure(
        `dead-letter topic ${dlq} does not exist on ${transport.url} (the app's: ${known})`,
      )
    }
    const checked = new Set<string>()
    const ensureTarget = async (topic: string): Promise<void> => {
      if (checked.has(topic)) return
      const spec = topicSpec(app, topic)
      if (spec) await transport.admin.ensureTopics([spec])
      else if ((await transport.admin.partitionCount(topic)) === undefined) {
        throw new CliFailure(
          `cannot replay to ${topic}: no such topic on ${transport.url}, and app ${app.id} does not declare it`,
        )
      }
      checked.add(topic)
    }
    if (to !== undefined) await ensureTarget(to)

    const producer = transport.producer()
    const sentTo = new Map<string, number>()
    let skipped = 0
    let replayed = 0
    try {
      await readDeadLetters(transport, dlq, limit, async (r) => {
        const target = to ?? r.headers[HEADERS.sourceTopic]?.toString('utf8')
        if (!target) {
          skipped++
          return
        }
        await ensureTarget(target)
        await producer.send({
          topic: target,
          key: r.key,
          value: r.value,
          headers: originalHeaders(r.headers),
          timestamp: r.timestamp,
        })
        sentTo.set(target, (sentTo.get(target) ?? 0) + 1)
        replayed++
      })
      await producer.flush()
    } finally {
      await producer.close()
    }
    if (argv.options.json) {
      output.out(JSON.stringify({ dlq, replayed, skipped, to: Object.fromEntries(sentTo) }))
    } else {
      const where = [...sentTo].map(([t, n]) => `${t} (${n})`).join(', ')
      output.out(
        `replayed ${replayed} record${replayed === 1 ? '' : 's'} from ${dlq}${replayed > 0 ? ` to ${where}` : ''}`,
      )
      if (skipped > 0)
        output.err(
          `skipped ${skipped} record(s) without a ${HEADERS.sourceTopic} header: pass --to <topic> to replay them`,
        )
    }
    return 0
  } finally {
    await transport.close()
  }
}

/**
 * Reads the topic from its first to its current last offset, partition by partition, handing
 * at most `limit` records to `onRecord`. Records produced while it reads are left for next time.
 */
async function readDeadLetters(
  transport: Transport,
  topic: string,
  limit: number,
  onRecord: (r: RawRecord) => Promise<void>,
): Promise<void> {
  const [starts, ends] = await Promise.all([
    transport.admin.startOffsets(topic),
    transport.admin.endOffsets(topic),
  ])
  let left = limit
  for (const [partition, end] of [...ends].sort(([a], [b]) => a - b)) {
    const from = starts.get(partition) ?? 0
    if (left <= 0) break
    if (end <= from) continue
    const to = Number.isFinite(left) ? Math.min(end, from + left) : end
    await transport.read(topic, [{ partition, from, to }], async (records) => {
      for (const r of records) {
        if (left <= 0) return
        left--
        await onRecord(r)
      }
    })
  }
}
