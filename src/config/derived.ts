import type { Config } from './schema.ts'

/**
 * Largest WAL record. A whole batch request is one record, and its NDJSON re-serialisation can be
 * longer than the body it came from (normalised fields, escapes), hence the headroom.
 */
export function maxRecordBytes(config: Config): number {
  return Math.max(config.maxBatchBytes, config.maxBodyBytes) * 2 + 64 * 1024
}
