/**
 * One WAL record on disk: `[length u32 LE][crc32c u32 LE of the payload][payload]`.
 * `length` counts payload bytes only and is never 0: a zero-filled tail (a file extended but never
 * written, as ext4 leaves after a power loss) must read as invalid, not as an empty record.
 * The checksum covers the payload; a corrupt length is caught by the bounds check and, failing
 * that, by the checksum of the bytes it points at.
 */
import { crc32c } from './crc.ts'

export const HEADER_BYTES = 8

/**
 * What every payload Spillway writes looks like: NDJSON lines of events, so its first byte is `{`
 * and its last a newline. The normal read path does not care (payloads are opaque to it); only
 * resynchronisation after damage requires it, to tell a record from noise (FORMAT.md).
 */
export const PAYLOAD_FIRST_BYTE = 0x7b
export const PAYLOAD_LAST_BYTE = 0x0a
/** The shortest payload of that shape: `{` and a newline. */
export const MIN_RESYNC_PAYLOAD = 2

/** Largest payload the u32 length field can describe. */
export const MAX_PAYLOAD_LIMIT = 0xffff_ffff

export type DecodeResult =
  /** A whole, valid record: `payload` is a view into the input buffer (no copy), `size` its bytes on disk. */
  | { readonly status: 'ok'; readonly payload: Buffer; readonly size: number }
  /** The buffer ends inside the record: `needed` bytes from the record's start would complete it. */
  | { readonly status: 'incomplete'; readonly needed: number }
  /** The bytes at this offset cannot be a record. */
  | { readonly status: 'corrupt'; readonly reason: string }

/** Bytes a payload of `payloadBytes` takes on disk. */
export function recordBytes(payloadBytes: number): number {
  return HEADER_BYTES + payloadBytes
}

/** Writes the header of `payload` at `offset` of `target`; the caller places the payload after it. */
export function writeHeader(payload: Uint8Array, target: Buffer, offset: number): void {
  target.writeUInt32LE(payload.length, offset)
  target.writeUInt32LE(crc32c(payload), offset + 4)
}

/** A whole record in a new buffer (tests, tools; the writer builds records in place). */
export function encodeRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(recordBytes(payload.length))
  writeHeader(payload, out, 0)
  out.set(payload, HEADER_BYTES)
  return out
}

/**
 * Decodes the record starting at `offset` of `buf`, reading no further than `end`.
 * `incomplete` only says the bytes stop early; whether that is a torn tail or "read more" is the
 * caller's call, since only it knows where the file ends.
 */
export function decodeRecord(
  buf: Buffer,
  offset: number,
  maxRecordBytes: number,
  end = buf.length,
): DecodeResult {
  const available = end - offset
  if (available < HEADER_BYTES) return { status: 'incomplete', needed: HEADER_BYTES }
  const length = buf.readUInt32LE(offset)
  if (length === 0) return { status: 'corrupt', reason: 'record length is 0 (zero-filled or torn tail)' }
  if (length > maxRecordBytes) {
    return { status: 'corrupt', reason: `record length ${length} exceeds the maximum of ${maxRecordBytes}` }
  }
  const size = HEADER_BYTES + length
  if (available < size) return { status: 'incomplete', needed: size }
  const payload = buf.subarray(offset + HEADER_BYTES, offset + size)
  const expected = buf.readUInt32LE(offset + 4)
  const actual = crc32c(payload)
  if (actual !== expected) {
    return {
      status: 'corrupt',
      reason: `crc32c mismatch (stored ${hex(expected)}, computed ${hex(actual)})`,
    }
  }
  return { status: 'ok', payload, size }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0')
}
