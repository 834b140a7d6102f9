import type { Topic } from '../topics/topic.js'
import { intOption, stringOption } from './args.js'
import type { CommandContext } from './context.js'
import { onMemoryBroker, openTransport } from './context.js'
import { topicSpec } from './describe.js'
import { UsageError } from './exitCodes.js'

/**
 * `mephisto send <topic|agent> '<json>'`: encodes the value with the topic's codecs (a value its
 * schema refuses is not sent) and produces it, `--repeat` times. Reports the partitions and
 * offsets written.
 */
export async function sendCommand(ctx: CommandContext): Promise<number> {
  const { app, argv, output } = ctx
  const [target, text, ...extra] = argv.args
  if (target === undefined || text === undefined) {
    throw new UsageError(
      "send needs a topic or agent and a JSON value: mephisto send <topic|agent> '<json>'",
      'send',
    )
  }
  if (extra.length > 0) {
    throw new UsageError(
      `send takes one JSON value; got extra arguments ${extra.map((a) => JSON.stringify(a)).join(' ')} (quote the JSON)`,
      'send',
    )
  }
  const topic = resolveTarget(ctx, target)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new UsageError(
      `the value is not valid JSON: ${(err as Error).message} (in ${JSON.stringify(text)})`,
      'send',
    )
  }
  const repeat = intOption(argv.options, 'repeat', 1, 'send', 1)
  const rawKey = stringOption(argv.options, 'key')
  const spec = topicSpec(app, topic.name)!
  let partition: number | undefined
  if (argv.options.partition !== undefined) {
    partition = intOption(argv.options, 'partition', 0, 'send')
  }

  let key: Buffer | null = null
  let encoded: Buffer | null
  try {
    if (rawKey !== undefined) key = topic.keyCodec.encode(rawKey)
    encoded = value === null ? null : topic.valueCodec.encode(value)
    // Decoding what we would send runs the topic's schema: a value the agents would dead-letter
    // is refused here, where the person typing it can fix it.
    if (encoded !== null) topic.valueCodec.decode(encoded)
    if (key !== null) topic.keyCodec.decode(key)
  } catch (err) {
    throw new UsageError(`the message does not fit topic ${topic.name}: ${(err as Error).message}`, 'send')
  }

  if (onMemoryBroker(app)) {
    output.err('note: on memory:// the message stays in this process; pass --broker to send to Kafka')
  }
  const transport = await openTransport(ctx)
  try {
    await transport.admin.ensureTopics([spec])
    const partitions = (await transport.admin.partitionCount(topic.name)) ?? spec.partitions
    if (partition !== undefined && partition >= partitions) {
      throw new UsageError(
        `--partition must be below ${partitions}: topic ${topic.name} has ${partitions} partition(s)`,
        'send',
      )
    }
    const producer = transport.producer()
    const written = new Map<number, { first: number; last: number }>()
    try {
      if (repeat === 1) {
        const meta = await producer.sendAndWait({
          topic: topic.name,
          key,
          value: encoded,
          ...(partition !== undefined && { partition }),
        })
        written.set(meta.partition, { first: meta.offset, last: meta.offset })
      } else {
        for (let i = 0; i < repeat; i++) {
          await producer.send({
            topic: topic.name,
            key,
            value: encoded,
            ...(partition !== undefined && { partition }),
          })
        }
        for (const meta of await producer.flush()) {
          written.set(meta.partition, { first: meta.offset, last: meta.offset })
        }
      }
    } finally {
      await producer.close()
    }
    const offsets = [...written].sort(([a], [b]) => a - b).map(([p, o]) => ({ partition: p, offset: o.last }))
    if (argv.options.json) {
      output.out(JSON.stringify({ topic: topic.name, sent: repeat, offsets }))
    } else {
      const where = offsets.map((o) => `partition ${o.partition} (last offset ${o.offset})`).join(', ')
      output.out(`sent ${repeat} message${repeat === 1 ? '' : 's'} to ${topic.name}: ${where}`)
    }
    return 0
  } finally {
    await transport.close()
  }
}

/** A topic of the app by name, or the source topic of an agent by name. */
function resolveTarget(ctx: CommandContext, name: string): Topic<any, any> {
  const { app } = ctx
  const topic = app.topics.get(name)
  if (topic) return topic
  const agent = app.agents.find((a) => a.name === name)
  if (agent) {
    const source = agent.source
    if (source.kind === 'channel') {
      throw new UsageError(
        `agent ${name} reads the in-process channel ${source.name}, which only its own worker can send to`,
        'send',
      )
    }
    return source as Topic<any, any>
  }
  const topics = [...app.topics.keys()].join(', ') || 'none'
  const agents = app.agents.map((a) => a.name).join(', ') || 'none'
  throw new UsageError(
    `app ${app.id} has no topic or agent named ${JSON.stringify(name)} (topics: ${topics}; agents: ${agents})`,
    'send',
  )
}
