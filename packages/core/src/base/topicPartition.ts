/**
 * Topic-partition identity: one map key and one sort order for every place that indexes or
 * lists partitions (trackers, transactions, produced offsets, assignments).
 */

/** A partition of a topic. */
export interface TopicPartition {
  topic: string
  partition: number
}

/** A map key for a topic-partition; the NUL separator cannot occur in a topic name. */
export function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}

/** Orders by topic name, then partition number. */
export function compareTopicPartitions(a: TopicPartition, b: TopicPartition): number {
  return a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
}

/** Sorts in place by topic, then partition, and returns the array. */
export function sortTopicPartitions<T extends TopicPartition>(list: T[]): T[] {
  return list.sort(compareTopicPartitions)
}
