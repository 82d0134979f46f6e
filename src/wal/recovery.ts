/**
 * Recovery: what `WalWriter.open()` does before the first append.
 *
 * Only the last segment can hold a torn write — a crash or power loss in the middle of a group —
 * because a group is fdatasync'd before the next one starts and rotation happens between groups.
 * So the last segment is scanned record by record from its start. Bad bytes (short header, length
 * 0 or too large, record past EOF, CRC mismatch) that a valid record follows are damage, not a
 * torn write: the records after them were acknowledged, so they are left in place, for the readers
 * to skip (and keep aside) just the damaged bytes. Bad bytes that no valid record follows are the
 * torn tail: the file is cut at their start and fsync'd. Nothing there was ever acknowledged as
 * durable: an fsync'd group ends on a record boundary and every record before it checks out.
 *
 * Sealed segments are not read at start (that is `spillway wal verify`); only their sizes are
 * taken, to know where each one ends.
 */
import { type FileHandle, mkdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import type { WalIo } from './io.ts'
import { type ScanDamage, type ScanStop, scanSegment } from './scan.ts'
import { listSegments, type SegmentFile } from './segment.ts'

/** A segment whose extent is known: [start, end). */
export interface SegmentRange extends SegmentFile {
  readonly end: number
}

export interface RecoveredTail {
  readonly segment: SegmentFile
  /** Open read-write, positioned by the writer (every write names its offset). */
  readonly file: FileHandle
  /** Valid bytes after the repair: where the next group goes. */
  readonly size: number
}

export interface RecoveredLog {
  /** Every segment but the last, oldest first. */
  readonly sealed: SegmentRange[]
  /** The last segment, undefined when the directory held none. */
  readonly tail: RecoveredTail | undefined
  readonly truncatedBytes: number
  /** Why the tail was cut, when it was. */
  readonly stop: ScanStop | undefined
  /** Damaged ranges inside the last segment, left for the readers to skip. */
  readonly damaged: (ScanDamage & { readonly segment: string })[]
}

export async function recoverLog(dir: string, maxRecordBytes: number, io: WalIo): Promise<RecoveredLog> {
  const created = await mkdir(dir, { recursive: true })
  // A fresh directory's own entry must survive a power loss too, or the first segment's does not:
  // sync the parent of every directory mkdir made, from `dir` up to the first one created.
  if (created !== undefined) {
    for (let made = resolve(dir); ; made = dirname(made)) {
      await io.syncDir(dirname(made))
      if (made === created || dirname(made) === made) break
    }
  }

  const segments = await listSegments(dir)
  if (segments.length === 0) {
    return { sealed: [], tail: undefined, truncatedBytes: 0, stop: undefined, damaged: [] }
  }

  const sealed: SegmentRange[] = []
  for (const segment of segments.slice(0, -1)) {
    const { size } = await stat(segment.path)
    sealed.push({ ...segment, end: segment.start + size })
  }

  const last = segments[segments.length - 1]
  const file = await io.open(last.path, 'r+')
  try {
    const { size } = await file.stat()
    const scan = await scanSegment(file, size, maxRecordBytes)
    let truncatedBytes = 0
    if (scan.validEnd < size) {
      await io.truncate(file, scan.validEnd)
      await io.datasync(file)
      truncatedBytes = size - scan.validEnd
    }
    return {
      sealed,
      tail: { segment: last, file, size: scan.validEnd },
      truncatedBytes,
      stop: scan.stop,
      damaged: scan.damaged.map((d) => ({ ...d, segment: last.name })),
    }
  } catch (error) {
    await file.close().catch(() => {})
    throw error
  }
}
