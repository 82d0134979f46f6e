/**
 * Walks the records of one segment file from its start, in large sequential reads. Recovery uses
 * it on the tail segment; `inspect` and `verify` on every segment. Bytes that are not a valid
 * record are skipped up to the next record found by resynchronisation (below), and reported as
 * damaged; bad bytes that no valid record follows end the scan, and the caller decides what they
 * are (a torn tail to truncate in the last segment, damage to the end in a sealed one).
 */
import type { FileHandle } from 'node:fs/promises'
import { crc32c } from './crc.ts'
import {
  decodeRecord,
  HEADER_BYTES,
  MAX_PAYLOAD_LIMIT,
  MIN_RESYNC_PAYLOAD,
  PAYLOAD_FIRST_BYTE,
  PAYLOAD_LAST_BYTE,
} from './record.ts'

export const SCAN_CHUNK_BYTES = 1 << 20

export interface ScanStop {
  /** Offset inside the segment of the first byte that is not a valid record. */
  readonly offset: number
  /** incomplete: the file ends inside a record; corrupt: the bytes cannot be a record. */
  readonly kind: 'incomplete' | 'corrupt'
  readonly reason: string
}

/** Bad bytes with a valid record after them: [offset, end) of the segment. */
export interface ScanDamage {
  readonly offset: number
  /** Offset of the next valid record, where reading resumes. */
  readonly end: number
  readonly reason: string
}

export interface ScanResult {
  /** Offset just past the last valid record. */
  readonly validEnd: number
  /** Valid records, including those after damaged bytes. */
  readonly records: number
  /** Offset past the first record (undefined when there is none). */
  readonly firstEnd: number | undefined
  /** Damaged ranges skipped by resynchronisation, in file order. */
  readonly damaged: ScanDamage[]
  /** Why the bytes from `stop.offset` to the end of the file hold no record; undefined when they all do. */
  readonly stop: ScanStop | undefined
}

export async function scanSegment(
  file: FileHandle,
  size: number,
  maxRecordBytes: number,
  chunkBytes = SCAN_CHUNK_BYTES,
): Promise<ScanResult> {
  // Payloads are not kept, so one buffer serves the whole scan (grown only for a large record).
  let buf = Buffer.allocUnsafeSlow(Math.min(chunkBytes, Math.max(size, 8)))
  let offset = 0
  let records = 0
  let validEnd = 0
  let firstEnd: number | undefined
  let need = 0
  const damaged: ScanDamage[] = []
  while (offset < size) {
    const want = Math.min(size - offset, Math.max(chunkBytes, need))
    if (want > buf.length) buf = Buffer.allocUnsafeSlow(want)
    const got = await readFully(file, buf, want, offset)
    let i = 0
    let bad: ScanStop | undefined
    for (;;) {
      const result = decodeRecord(buf, i, maxRecordBytes, got)
      if (result.status === 'ok') {
        i += result.size
        records++
        validEnd = offset + i
        firstEnd ??= offset + i
        need = 0
        continue
      }
      if (result.status === 'corrupt') {
        bad = { offset: offset + i, kind: 'corrupt', reason: result.reason }
        break
      }
      if (i > 0) break // read on from this record's start
      if (offset + result.needed > size || got < want) {
        const reason = `file ends inside a record (${size - offset} of ${result.needed} bytes present)`
        bad = { offset, kind: 'incomplete', reason }
        break
      }
      need = result.needed
      break
    }
    if (!bad) {
      offset += i
      continue
    }
    const next = await findNextRecord(file, bad.offset + 1, size, maxRecordBytes, chunkBytes)
    if (next === undefined) return { validEnd, records, firstEnd, damaged, stop: bad }
    damaged.push({ offset: bad.offset, end: next, reason: bad.reason })
    offset = next
    need = 0
  }
  return { validEnd, records, firstEnd, damaged, stop: undefined }
}

/** Reads `length` bytes at `position` unless the file ends first; returns the bytes read. */
export async function readFully(
  file: FileHandle,
  buf: Buffer,
  length: number,
  position: number,
): Promise<number> {
  let done = 0
  while (done < length) {
    const { bytesRead } = await file.read(buf, done, length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

/**
 * Finding a record again after damage. Records carry no sync marker, so after a bad one the next
 * record is searched for byte by byte: the first offset where a whole record of the shape Spillway
 * writes starts — a length within bounds that ends inside the searched range, a payload that
 * opens with `{` and ends with a newline (NDJSON), and a CRC-32C that matches. Inside NDJSON no
 * byte is below 0x20 but the newline, so no offset inside a payload even has a plausible length
 * (its high byte would be 0x00–0x1f); only the bytes around real headers and the damaged bytes
 * themselves are candidates, and each passes the shape test with odds of 2^-16 and the checksum
 * with 2^-32. The rule is written down in FORMAT.md ("Finding a record again").
 *
 * Returns the offset (in the file) of the first such record starting in [from, end) and ending at
 * or before `end`, or undefined when there is none.
 */
export async function findNextRecord(
  file: FileHandle,
  from: number,
  end: number,
  maxRecordBytes: number,
  chunkBytes = SCAN_CHUNK_BYTES,
): Promise<number | undefined> {
  const maxLength = Math.min(maxRecordBytes, MAX_PAYLOAD_LIMIT)
  const maxHighByte = maxLength >>> 24
  const smallest = HEADER_BYTES + MIN_RESYNC_PAYLOAD
  // Each chunk reads a header's worth past its end, so a header across the edge is seen whole.
  const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(chunkBytes + HEADER_BYTES, end - from)))
  for (let base = from; base + smallest <= end; base += chunkBytes) {
    const want = Math.min(end - base, chunkBytes + HEADER_BYTES)
    const got = await readFully(file, buf, want, base)
    for (let o = 0; o < chunkBytes && o + smallest <= got; o++) {
      if (buf[o + 3] > maxHighByte) continue // cheap: most offsets fail on the length's high byte
      const length = buf.readUInt32LE(o)
      if (length < MIN_RESYNC_PAYLOAD || length > maxLength) continue
      if (base + o + HEADER_BYTES + length > end) continue
      if (await isRecordAt(file, buf, base, got, base + o, length)) return base + o
    }
    if (got < want) return undefined // the file is shorter than `end`: nothing more to search
  }
  return undefined
}

/** Whether a record with this length at `at` has the writer's shape and its checksum matches. */
async function isRecordAt(
  file: FileHandle,
  buf: Buffer,
  base: number,
  got: number,
  at: number,
  length: number,
): Promise<boolean> {
  const first = at + HEADER_BYTES
  const last = first + length - 1
  if ((await byteAt(file, buf, base, got, first)) !== PAYLOAD_FIRST_BYTE) return false
  if ((await byteAt(file, buf, base, got, last)) !== PAYLOAD_LAST_BYTE) return false
  const stored = buf.readUInt32LE(at - base + 4)
  let payload: Buffer
  if (last < base + got) {
    payload = buf.subarray(first - base, last + 1 - base)
  } else {
    payload = Buffer.allocUnsafe(length)
    if ((await readFully(file, payload, length, first)) < length) return false
  }
  return crc32c(payload) === stored
}

async function byteAt(file: FileHandle, buf: Buffer, base: number, got: number, at: number): Promise<number> {
  if (at - base < got) return buf[at - base]
  const one = Buffer.allocUnsafe(1)
  return (await readFully(file, one, 1, at)) === 1 ? one[0] : -1
}
