/** Intake: pure validation, normalisation, dedup keys and the WAL form of events. */
export { parseBatch, validateBatch } from './batch.ts'
export { batchIdempotencyKey, canonicalJson, contentEventId, dedupKey, dedupKeyOf } from './event-id.ts'
export { decodeEvents, encodeEvents, serializeEvent } from './serialize.ts'
export {
  type BatchValidation,
  CHANNELS,
  type Channel,
  type IntakeContext,
  type IntakeLimits,
  type NormalizedEvent,
  type ParsedBatch,
  type Rejection,
  type ValidationResult,
} from './types.ts'
export { MAX_EVENT_ID_LENGTH, MAX_METADATA_KEYS, validateEvent } from './validate.ts'
