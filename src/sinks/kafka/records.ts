/**
 * A SinkBatch → Kafka records, and the records → produce requests.
 *
 * Records. One event is one record: the value is the WAL's NDJSON line as it is (the normalized
 * event JSON, without the newline), sliced out of the batch's bytes without copying; the key is
 * the event's dedup key — `event_id`, `<tenant>/<event_id>` with API keys on (`payloadKeys` reads
 * it without parsing the line) — so copies of one event
 * go to one partition and a consumer can drop them by key. Batches without NDJSON are encoded with
 * the intake's `serializeEvent`, the same bytes.
 *
 * Produce requests. Each record's partition is chosen here (connectors/kafka/client.ts `partitionOf`), so the sink
 * knows which records went in which partition batch — Kafka accepts or refuses a partition batch
 * as a whole. The records of a partition are cut into chunks whose estimated size stays under the
 * topic's `max.message.bytes` (with a margin: the estimate counts uncompressed bytes plus the
 * record overheads, an upper bound of the compressed batch but for incompressible data, which
 * compressors grow by a fraction of a percent) and under CHUNK_BYTES; a record bigger than that
 * goes alone. A round takes the next chunk of every partition until ROUND_BYTES, and is one
 * `send` (one produce request per broker). Rounds go one after another.
 */
import { partitionOf } from '../../connectors/kafka/client.ts'
import { dedupKeyOf } from '../../intake/event-id.ts'
import { payloadKeys } from '../../intake/ndjson-keys.ts'
import { serializeEvent } from '../../intake/serialize.ts'
import type { SinkBatch } from '../sink.ts'

/** Most estimated bytes of one partition batch (compression works on the whole batch). */
export const CHUNK_BYTES = 512 * 1024
/** Most estimated bytes of one produce request. */
export const ROUND_BYTES = 4 * 1024 * 1024
/** Bytes a record adds to its key and value in a v2 record batch (varints, attributes, deltas), at most. */
export const RECORD_OVERHEAD = 24
/** Bytes of a record batch header. */
export const BATCH_OVERHEAD = 61

export interface OutgoingRecord {
  readonly key: Buffer
  readonly value: Buffer
  readonly partition: number
}

/** The records of a batch, in log order, each with its partition. */
export function batchRecords(batch: SinkBatch, partitions: number): OutgoingRecord[] {
  const records: OutgoingRecord[] = []
  if (batch.ndjson) {
    const ndjson = batch.ndjson
    const { keys, starts } = payloadKeys(ndjson)
    for (let i = 0; i < keys.length; i++) {
      let end = i + 1 < starts.length ? starts[i + 1] : ndjson.length
      // A line ends at its newline (blank lines between events are not events).
      const newline = ndjson.indexOf(0x0a, starts[i])
      if (newline !== -1 && newline < end) end = newline
      const key = Buffer.from(keys[i], 'utf8')
      records.push({ key, value: ndjson.subarray(starts[i], end), partition: partitionOf(key, partitions) })
    }
    return records
  }
  for (const event of batch.events) {
    const key = Buffer.from(dedupKeyOf(event), 'utf8')
    records.push({
      key,
      value: Buffer.from(serializeEvent(event), 'utf8'),
      partition: partitionOf(key, partitions),
    })
  }
  return records
}

export function recordSize(record: OutgoingRecord): number {
  return record.key.length + record.value.length + RECORD_OVERHEAD
}

/** The estimated size limit of one partition batch for a topic's `max.message.bytes`. */
export function chunkLimit(maxMessageBytes: number): number {
  return Math.max(1, Math.min(CHUNK_BYTES, Math.floor((maxMessageBytes - BATCH_OVERHEAD) * 0.9)))
}

/** A round is a list of chunks; a chunk is records of one partition, in log order. */
export type Round = OutgoingRecord[][]

/** The records cut into rounds (see the header); every record is in exactly one chunk. */
export function cutRounds(
  records: readonly OutgoingRecord[],
  limit: number,
  roundBytes = ROUND_BYTES,
): Round[] {
  const byPartition = new Map<number, OutgoingRecord[]>()
  for (const record of records) {
    let list = byPartition.get(record.partition)
    if (!list) {
      list = []
      byPartition.set(record.partition, list)
    }
    list.push(record)
  }
  const queues = [...byPartition.values()].map((list) => ({ list, next: 0 }))
  const rounds: Round[] = []
  let pending = queues.filter((queue) => queue.next < queue.list.length)
  while (pending.length > 0) {
    const round: Round = []
    let total = 0
    for (const queue of pending) {
      if (total >= roundBytes) break
      const chunk: OutgoingRecord[] = []
      let bytes = BATCH_OVERHEAD
      while (queue.next < queue.list.length) {
        const size = recordSize(queue.list[queue.next])
        if (chunk.length > 0 && bytes + size > limit) break
        chunk.push(queue.list[queue.next++])
        bytes += size
      }
      round.push(chunk)
      total += bytes
    }
    rounds.push(round)
    pending = pending.filter((queue) => queue.next < queue.list.length)
  }
  return rounds
}
