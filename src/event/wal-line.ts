/**
 * The layout of a WAL line that readers rely on without parsing it (src/wal/FORMAT.md "Records",
 * the payload line): `event_id` first, then `tenant` when it is set, `metadata` last, and before
 * `metadata` only strings, numbers, null and arrays of strings (so `,"metadata":` and
 * `,"timestamp":` cannot occur inside an earlier value). The constants below are the bytes
 * intake/ndjson-keys.ts and sinks/clickhouse/rows.ts search for; `assertWalLineLayout` checks the
 * field table at load and intake/serialize.ts checks its own output with it, so a change of
 * order fails at start instead of as wrong dedup keys or ClickHouse rows.
 */
import { EVENT_TABLE, type EventField, STORED_FIELDS } from './fields.ts'

/** A line starts with these bytes, then the id's JSON string. */
export const LINE_START = '{"event_id":'
/** Right after the id's string when the event has a tenant. */
export const TENANT_KEY = ',"tenant":'
export const TIMESTAMP_KEY = ',"timestamp":'
/** The last field's key: the value after it runs to the line's closing brace. */
export const METADATA_KEY = ',"metadata":'

/** Kinds whose JSON cannot hide `,"<name>":` outside a string (a string escapes every `"`). */
const FLAT_KINDS = new Set(['text', 'string', 'label', 'enum', 'seconds', 'millis', 'strings'])

/** Throws when `fields` (stored names in line order) break the layout above. */
export function assertWalLineLayout(fields: readonly string[], where: string): void {
  const fail = (what: string) => {
    throw new Error(`${where}: ${what} (src/wal/FORMAT.md "Records"); the fields are ${fields.join(', ')}`)
  }
  if (fields[0] !== 'event_id') fail('event_id must be the first field of a WAL line')
  const tenant = fields.indexOf('tenant')
  if (tenant !== -1 && tenant !== 1) fail('tenant must come right after event_id')
  if (fields.at(-1) !== 'metadata') fail('metadata must be the last field of a WAL line')
  if (!fields.includes('timestamp')) fail('a WAL line must hold timestamp')
}

assertWalLineLayout(STORED_FIELDS, 'src/event/fields.ts')
for (const field of EVENT_TABLE as readonly EventField[]) {
  if (field.stored && field.name !== 'metadata' && !FLAT_KINDS.has(field.kind)) {
    throw new Error(
      `src/event/fields.ts: ${field.name} (${field.kind}) may not come before metadata in a WAL line: only strings, numbers, null and arrays of strings may (src/wal/FORMAT.md "Records")`,
    )
  }
}
