import { CHANNELS, type Channel, STORED_FIELDS, type StoredFieldName } from '../event/fields.ts'

export { CHANNELS, type Channel }

/**
 * An event after validation and normalisation: what the WAL stores (one JSON line each) and what
 * every sink receives. Its fields are the stored fields of src/event/fields.ts (checked below);
 * their order there is the WAL line's.
 */
export interface NormalizedEvent {
  /** The dedup key: the client's `event_id`, else the `Idempotency-Key`, else a hash of the canonical event. */
  readonly event_id: string
  /**
   * The label of the API key the event came with; absent (never '') when API keys are off, so
   * the WAL line and the stores are what they were before tenants. Dedup keys are scoped by it.
   */
  readonly tenant?: string
  readonly event_name: string
  readonly channel: Channel
  readonly campaign_id: string | null
  readonly user_id: string
  /** Unix seconds, after clock-skew correction when `sent_at` was given. */
  readonly timestamp: number
  /** Unix milliseconds at which this server received the request. */
  readonly received_at: number
  readonly tags: readonly string[]
  readonly metadata: Readonly<Record<string, unknown>> | null
}

/** The fields of a NormalizedEvent, in their fixed order (the WAL line's), from the field table. */
export const EVENT_FIELDS = STORED_FIELDS

// A field added to the table but not to NormalizedEvent (or the reverse) fails type-checking here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const fieldsMatch: Same<keyof NormalizedEvent, StoredFieldName> = true
void fieldsMatch

export interface IntakeLimits {
  readonly maxEventBytes: number
  readonly maxStringLength: number
  readonly maxTags: number
  readonly maxDepth: number
  readonly clockSkewSeconds: number
}

/** What the request contributes to each event besides its body. */
export interface IntakeContext {
  /** Server clock, Unix milliseconds. */
  readonly receivedAt: number
  /** `Idempotency-Key` header, if any (for a batch, event i gets `<key>:<i>`). */
  readonly idempotencyKey?: string
  /** The label of the request's API key; absent or '' when API keys are off (one tenant). */
  readonly tenant?: string
}

/**
 * The verdict on one event. `skewSeconds` is `received − sent_at` when the client sent `sent_at`
 * (for the skew histogram), else null. `tooLarge` marks the one error the HTTP layer answers 413
 * for a single event (the event is larger than `maxEventBytes`); every other error is a 400.
 */
export type ValidationResult =
  | { readonly ok: true; readonly event: NormalizedEvent; readonly skewSeconds: number | null }
  | { readonly ok: false; readonly error: string; readonly tooLarge?: boolean }

/** A batch body split into items; an NDJSON line that is not JSON is kept as a rejection by index. */
export interface ParsedBatch {
  /** One entry per event; the entry of an index in `lineErrors` is the raw text of that line. */
  readonly items: readonly unknown[]
  readonly lineErrors: ReadonlyMap<number, string>
}

export interface Rejection {
  readonly index: number
  readonly error: string
}

export interface BatchValidation {
  readonly events: NormalizedEvent[]
  /** The batch index of each event of `events`. */
  readonly indexes: number[]
  /** The `timestamp` of each event of `events` as the client sent it (before skew correction). */
  readonly clientTimestamps: number[]
  readonly rejected: Rejection[]
  /** `received − sent_at` of every accepted event that carried `sent_at`. */
  readonly skews: number[]
}
