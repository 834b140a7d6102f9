/**
 * Where a key of a request lives: its table partition or topic partition, and whether this worker
 * owns it. Bad keys and partitions are answered `400` here, with the reason; nothing is read.
 */

import type { Table } from '../tables/table.js'
import type { Topic } from '../topics/topic.js'
import { defaultPartition } from '../transport/partitioner.js'
import type { WebResponse } from './page.js'
import type { WebHost, WebRouter } from './webHost.js'

/** A key placed: the decoded key, its partition, whether it is served here, and what to call it in messages. */
export interface Placement {
  key: unknown
  partition: number
  local: boolean
  what: string
}

/** Whether `x` is a key placed rather than the answer to a bad one. */
export function isPlacement(x: Placement | WebResponse): x is Placement {
  return 'local' in x
}

function badRequest(error: string, message: string): WebResponse {
  return { status: 400, body: { error, message } }
}

/** Partitions of `table` this worker owns (none unless running or stopping). */
export function ownedPartitions(host: WebHost, table: Table<any, any>): number[] {
  return host.state === 'running' || host.state === 'stopping'
    ? host.app.tableState(table).ownedPartitions()
    : []
}

/**
 * The table partition of `rawKey` (URL-decoded text; decoded with the table's key codec when its
 * keys are not strings): `asked` when given (`?partition=`), else the one the key hashes to.
 */
export function placeTableKey(
  host: WebHost,
  table: Table<any, any>,
  rawKey: string,
  asked: string | null = null,
): Placement | WebResponse {
  let key: unknown = rawKey
  if (!table.stringKeys) {
    try {
      key = table.keyCodec.decode(Buffer.from(rawKey, 'utf8'))
    } catch (err) {
      return badRequest(
        'BAD_KEY',
        `cannot decode ${JSON.stringify(rawKey)} with the key codec of table ${table.name}: ${(err as Error)?.message ?? err}`,
      )
    }
  }
  let sk: string
  try {
    sk = table.storageKey(key)
  } catch (err) {
    return badRequest('BAD_KEY', (err as Error)?.message ?? String(err))
  }
  let partition: number
  if (asked !== null) {
    if (!/^\d{1,9}$/.test(asked) || Number(asked) >= table.partitions) {
      return badRequest(
        'BAD_PARTITION',
        `partition must be an integer from 0 to ${table.partitions - 1} (got ${JSON.stringify(asked)})`,
      )
    }
    partition = Number(asked)
  } else {
    partition = table.hashPartition(sk)
  }
  const local = ownedPartitions(host, table).includes(partition)
  return { key, partition, local, what: `partition ${partition} of table ${table.name}` }
}

/**
 * The partition of `topic` that `rawKey` (decoded with the topic's key codec) goes to, by Kafka's
 * default partitioner over the topic's declared partitions. Here when this worker is assigned
 * that partition number, or when there is no router to ask.
 */
export function placeTopicKey(
  host: WebHost,
  router: WebRouter | undefined,
  topic: Topic<any, any>,
  rawKey: string,
): Placement | WebResponse {
  let bytes: Buffer
  let key: unknown
  try {
    key = topic.keyCodec.decode(Buffer.from(rawKey, 'utf8'))
    bytes = topic.keyCodec.encode(key)
  } catch (err) {
    return badRequest(
      'BAD_KEY',
      `cannot decode ${JSON.stringify(rawKey)} with the key codec of topic ${topic.name}: ${(err as Error)?.message ?? err}`,
    )
  }
  const partitions = topic.options.partitions ?? host.app.topicPartitions
  const partition = defaultPartition(bytes, partitions)
  const local = router === undefined || router.owns(partition)
  return { key, partition, local, what: `partition ${partition} of topic ${topic.name}` }
}
