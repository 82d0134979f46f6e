export interface WalOptions {
  /** Directory holding the segment files. */
  readonly dir: string
  readonly segmentBytes: number
  /** A group is written as soon as this many bytes wait. */
  readonly groupCommitBytes: number
  /** Extra time an idle writer waits to gather a group (0: write at once). */
  readonly groupCommitDelayMs: number
  /** Largest payload of one record. */
  readonly maxRecordBytes: number
}

/** A record read back from the log. */
export interface WalRecord {
  /** Position of the record's first header byte. */
  readonly start: number
  /** Position just past the record: the cursor once it is consumed. */
  readonly end: number
  readonly payload: Buffer
}

export interface RecoveryReport {
  readonly segments: number
  /** Log position of the first byte still on disk. */
  readonly oldest: number
  /** Log position past the last valid record (after repair). */
  readonly head: number
  /** Bytes cut off a torn or corrupt tail, 0 when the log was clean. */
  readonly truncatedBytes: number
  /**
   * Positions skipped because a sink's cursor (`open({ minHead })`) was past the recovered head:
   * the log restarted there in a new segment. 0 normally; > 0 means the storage lost acknowledged
   * bytes (or the WAL directory was replaced).
   */
  readonly skippedBytes: number
}

export interface AppendOptions {
  /** true: resolve after fdatasync (ack: durable); false: after the write reached the OS (ack: buffered). */
  readonly durable: boolean
}
