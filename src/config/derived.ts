import type { Config } from './schema.ts'

/**
 * Largest WAL record. A whole batch request is one record, and its NDJSON re-serialisation can be
 * longer than the body it came from (normalised fields, escapes), hence the headroom.
 */
export function maxRecordBytes(config: Config): number {
  return Math.max(config.maxBatchBytes, config.maxBodyBytes) * 2 + 64 * 1024
}

/**
 * `serve`'s worker processes. `workers: 0` means one per core, but no cluster on two cores or
 * fewer: there the primary's shard merging and the delivery thread need the second core, and one
 * process measured faster (`npm run bench:compare`, 2026-12-04: 31.6k req/s with one process,
 * 28.2k with two workers).
 */
export function workersOf(config: Pick<Config, 'workers'>, cores: number): number {
  if (config.workers > 0) return config.workers
  return cores <= 2 ? 1 : cores
}
