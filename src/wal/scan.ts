/**
 * Walks the records of one segment file from its start, in large sequential reads. Recovery uses
 * it on the tail segment; `inspect` and `verify` on every segment. It stops at the first bytes
 * that are not a whole valid record and says why, so each caller applies its own policy
 * (truncate, report).
 */
import type { FileHandle } from 'node:fs/promises'
import { decodeRecord } from './record.ts'

export const SCAN_CHUNK_BYTES = 1 << 20

export interface ScanStop {
  /** Offset inside the segment of the first byte that is not a valid record. */
  readonly offset: number
  /** incomplete: the file ends inside a record; corrupt: the bytes cannot be a record. */
  readonly kind: 'incomplete' | 'corrupt'
  readonly reason: string
}

export interface ScanResult {
  /** Offset just past the last valid record. */
  readonly validEnd: number
  readonly records: number
  /** Offset past the first record (undefined when there is none). */
  readonly firstEnd: number | undefined
  /** Why the scan stopped before the end of the file; undefined when the file is clean. */
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
  let firstEnd: number | undefined
  let need = 0
  while (offset < size) {
    const want = Math.min(size - offset, Math.max(chunkBytes, need))
    if (want > buf.length) buf = Buffer.allocUnsafeSlow(want)
    const got = await readFully(file, buf, want, offset)
    let i = 0
    for (;;) {
      const result = decodeRecord(buf, i, maxRecordBytes, got)
      if (result.status === 'ok') {
        i += result.size
        records++
        firstEnd ??= offset + i
        need = 0
        continue
      }
      if (result.status === 'corrupt') {
        return {
          validEnd: offset + i,
          records,
          firstEnd,
          stop: { offset: offset + i, kind: 'corrupt', reason: result.reason },
        }
      }
      if (i > 0) break // read on from this record's start
      if (offset + result.needed > size || got < want) {
        const reason = `file ends inside a record (${size - offset} of ${result.needed} bytes present)`
        return { validEnd: offset, records, firstEnd, stop: { offset, kind: 'incomplete', reason } }
      }
      need = result.needed
      break
    }
    offset += i
  }
  return { validEnd: offset, records, firstEnd, stop: undefined }
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
