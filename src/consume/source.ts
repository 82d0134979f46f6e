/**
 * What `spillway consume` needs from a log (Kafka consumer group, JetStream durable consumer):
 * fetch messages in log order, and commit them (offsets / acks) once they are stored.
 *
 * The consumer (src/consume/consumer.ts) appends each fetched batch to its local WAL, lets the
 * normal delivery (sinks, dedup, retries, dead letters) store it, and only when every sink's
 * cursor has passed that WAL record calls `commit` — so a crash anywhere before that re-reads
 * the messages from the log (at least once; the store and the dedup layers make it once).
 * Commits are called in fetch order, one batch after another, never concurrently.
 */

export interface FetchedBatch {
  /** Message values in log order: each one event as one JSON line (no newline at the end). */
  readonly values: readonly Buffer[]
  /** For logs and errors: where the batch came from, e.g. `events[3]@1200..1299`. */
  readonly describe: string
}

export interface LogSource {
  /** `kafka` or `nats`. */
  readonly name: string
  /** Connects, joins the group / binds the durable consumer (creating topic/stream/consumer if missing). */
  open(): Promise<void>
  /**
   * The next messages, at most `max`, waiting at most `waitMs` for the first; null when none
   * came. Resolves early (null) when `signal` aborts. Never returns a message twice unless the
   * log itself redelivers it (a rebalance, an expired ack wait, a restart).
   */
  fetch(max: number, waitMs: number, signal: AbortSignal): Promise<FetchedBatch | null>
  /**
   * Every message of `batch` (and of every batch fetched before it) is stored: commit the
   * offsets / ack the messages. A failure here is not fatal (the log redelivers, dedup drops the
   * copies): implementations log it and resolve; they reject only on programming errors.
   */
  commit(batch: FetchedBatch): Promise<void>
  /**
   * Messages that are not events (not JSON, invalid fields) go here with the reason, besides the
   * local dead-letter store: Kafka's dead-letter topic. Optional.
   */
  deadLetter?(values: readonly Buffer[], reason: string): Promise<void>
  /** Resolves when the log answers; rejects with the reason otherwise (readiness). */
  ping(): Promise<void>
  /** Leaves the group / stops fetching; uncommitted messages are redelivered to the next reader. */
  close(): Promise<void>
}
