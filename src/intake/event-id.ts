/**
 * Dedup keys. An event's key is its `event_id`, scoped by its tenant when API keys are on
 * (`dedupKey`). In order of precedence an event's `event_id` is:
 *   1. the client's `event_id`;
 *   2. the `Idempotency-Key` header; event i of a batch gets `<key>:<i>`, so a retried batch maps
 *      each event to the same key while the events of one batch stay distinct;
 *   3. a content hash: sha256 over the canonical event, shaped like a UUID (version nibble 8 —
 *      RFC 9562's "custom" version — and the RFC variant bits), so it reads like any other id.
 *
 * The canonical event is the content the client chose, normalised: `campaign_id`, `channel`,
 * `event_name`, `metadata`, `tags`, `timestamp` (as sent, BEFORE skew correction) and `user_id`,
 * with object keys sorted recursively, absent/null `campaign_id` and `metadata` as null and absent
 * `tags` as []. `sent_at` and the server's receive time are left out, so an exact retry — the same
 * body, even re-sent later with a new `sent_at` — gets the same id and is dropped as a duplicate,
 * and so does the same event with its keys in another order. The flip side: two genuinely
 * separate events with identical content in the same second are one event; a client that can
 * produce those must send `event_id`.
 *
 * The canonical text is built as a string, never as an object, so keys such as `__proto__` in
 * metadata are only ever read (as own properties), never assigned through.
 */
import { hash } from 'node:crypto'
import { quoteJson, quoteJsonArray } from './json.ts'
import type { Channel } from './types.ts'

const VARIANT = '89ab'

/**
 * The key every dedup layer (L1, the delivery check, Redis) and every store's idempotency use:
 * `<tenant>/<event_id>` with API keys on, the `event_id` alone without (one tenant, the empty one).
 * A label never holds `/` (auth.ts), so two tenants' keys never meet.
 */
export function dedupKey(tenant: string | undefined, eventId: string): string {
  return tenant ? tenant + '/' + eventId : eventId
}

/** `dedupKey` of a normalized event. */
export function dedupKeyOf(event: { readonly event_id: string; readonly tenant?: string }): string {
  return event.tenant ? event.tenant + '/' + event.event_id : event.event_id
}

/** The dedup key of event `index` of a batch sent with `Idempotency-Key: key`. */
export function batchIdempotencyKey(key: string, index: number): string {
  return key + ':' + index
}

export function contentEventId(
  eventName: string,
  channel: Channel,
  campaignId: string | null,
  userId: string,
  timestamp: number,
  tags: readonly string[],
  metadata: Readonly<Record<string, unknown>> | null,
): string {
  const canonical =
    '{"campaign_id":' +
    (campaignId === null ? 'null' : quoteJson(campaignId)) +
    ',"channel":"' +
    channel +
    '","event_name":' +
    quoteJson(eventName) +
    ',"metadata":' +
    (metadata === null ? 'null' : canonicalJson(metadata)) +
    ',"tags":' +
    quoteJsonArray(tags) +
    ',"timestamp":' +
    timestamp +
    ',"user_id":' +
    quoteJson(userId) +
    '}'
  return uuidFromHex(hash('sha256', canonical, 'hex'))
}

/** JSON with object keys sorted (by UTF-16 code units, like Array.prototype.sort) at every level. */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quoteJson(value)
    case 'number':
      // String() and JSON agree on every finite number; validation has refused the others.
      return Number.isFinite(value) ? String(value) : 'null'
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object':
      if (value === null) return 'null'
      break
    default:
      return 'null'
  }
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i])
    return out + ']'
  }
  const object = value as Record<string, unknown>
  const keys = sortKeys(Object.keys(object))
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    out += (i === 0 ? '' : ',') + quoteJson(key) + ':' + canonicalJson(object[key])
  }
  return out + '}'
}

/** Sorts in place. Metadata objects are small: insertion sort beats Array.prototype.sort's setup cost. */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 32) return keys.sort()
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]
    let j = i - 1
    while (j >= 0 && keys[j] > key) {
      keys[j + 1] = keys[j]
      j--
    }
    keys[j + 1] = key
  }
  return keys
}

/** xxxxxxxx-xxxx-8xxx-Vxxx-xxxxxxxxxxxx from the first 128 bits of a hex digest. */
function uuidFromHex(hex: string): string {
  return (
    hex.slice(0, 8) +
    '-' +
    hex.slice(8, 12) +
    '-8' +
    hex.slice(13, 16) +
    '-' +
    VARIANT[Number.parseInt(hex[16], 16) & 3] +
    hex.slice(17, 20) +
    '-' +
    hex.slice(20, 32)
  )
}
