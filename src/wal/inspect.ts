/**
 * What `spillway wal inspect` and `spillway wal verify` print: pure data about the log on disk,
 * read without the writer (the server may be running or not). Both read every record.
 *
 * Bad bytes are skipped up to the next valid record (resynchronisation, scan.ts), as the readers
 * skip them, so every record after damage is counted and each damaged range is listed.
 *
 * What verify counts as a problem (exit 1):
 * - damaged bytes that a valid record follows, in any segment (bad length, CRC mismatch): the
 *   records in them are lost to every sink that has not read them;
 * - bad bytes at the end of a sealed segment (no valid record after them): the same;
 * - two segments that overlap (a segment starts before the previous one ends): two records would
 *   share positions, and a cursor could not say which one it covers;
 * - a `.wal` file whose name is not a 20-digit position.
 * What it reports as a warning only:
 * - a torn tail in the last segment (bad bytes no valid record follows): normal after a crash, and
 *   the next start truncates it (if the server is running, the tail may simply be a group being
 *   written);
 * - damaged bytes kept aside in `<wal>/damaged/` by a server that skipped them: nothing more is
 *   lost, but someone should look at them (and at the disk) and then remove them;
 * - a gap between segments: the log restarted at a sink's cursor after the storage lost data
 *   (`minHead`); no record lives in a gap. The missing positions before the oldest segment are
 *   not reported at all: they are segments every sink had passed, deleted by design.
 */
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DAMAGED_DIR, type KeptFile, listKeptDamage } from './damage.ts'
import { MAX_PAYLOAD_LIMIT } from './record.ts'
import { type ScanDamage, type ScanStop, scanSegment } from './scan.ts'
import { listSegments, SEGMENT_SUFFIX } from './segment.ts'

export interface SegmentSummary {
  readonly file: string
  /** Log position of the segment's first byte. */
  readonly start: number
  /** Log position past its last byte (start + bytes). */
  readonly end: number
  readonly bytes: number
  /** Valid records, those after damaged bytes included. */
  readonly records: number
  /** End position of the first record (the cursor after it); null when there is none. */
  readonly firstEnd: number | null
  /** End position of the last valid record; equals `start` when there is none. */
  readonly validEnd: number
  /** Damaged ranges a valid record follows: [offset, end) of the file, from `position` in the log. */
  readonly damaged: (ScanDamage & { readonly position: number; readonly bytes: number })[]
  /** Bad bytes up to the end of the file that no valid record follows. */
  readonly stop: (ScanStop & { readonly position: number }) | null
}

export interface WalInspection {
  readonly dir: string
  readonly segments: SegmentSummary[]
  /** Damaged bytes a server skipped and kept aside, in `<dir>/damaged/`. */
  readonly kept: KeptFile[]
  readonly totals: {
    readonly segments: number
    readonly records: number
    readonly bytes: number
    /** Start of the oldest segment; null when the log is empty. */
    readonly oldest: number | null
    /** End of the last valid record: where the writer would continue; null when the log is empty. */
    readonly head: number | null
  }
}

export interface WalVerification {
  readonly ok: boolean
  readonly problems: string[]
  readonly warnings: string[]
  readonly segments: number
  readonly records: number
  readonly bytes: number
  readonly oldest: number | null
  readonly head: number | null
  readonly kept: KeptFile[]
}

/**
 * Lists the segments and counts their records. Without `maxRecordBytes` any length the format can
 * hold is accepted, so an oversized length shows up as a record cut short rather than as corrupt.
 */
export async function inspectWal(dir: string, maxRecordBytes = MAX_PAYLOAD_LIMIT): Promise<WalInspection> {
  const segments: SegmentSummary[] = []
  for (const segment of await listSegments(dir)) {
    const file = await open(segment.path, 'r')
    try {
      const { size } = await file.stat()
      const scan = await scanSegment(file, size, maxRecordBytes)
      segments.push({
        file: segment.name,
        start: segment.start,
        end: segment.start + size,
        bytes: size,
        records: scan.records,
        firstEnd: scan.firstEnd === undefined ? null : segment.start + scan.firstEnd,
        validEnd: segment.start + scan.validEnd,
        damaged: scan.damaged.map((d) => ({
          ...d,
          position: segment.start + d.offset,
          bytes: d.end - d.offset,
        })),
        stop: scan.stop ? { ...scan.stop, position: segment.start + scan.stop.offset } : null,
      })
    } finally {
      await file.close()
    }
  }
  const last = segments.at(-1)
  return {
    dir,
    segments,
    kept: await listKeptDamage(dir),
    totals: {
      segments: segments.length,
      records: segments.reduce((n, s) => n + s.records, 0),
      bytes: segments.reduce((n, s) => n + s.bytes, 0),
      oldest: segments[0]?.start ?? null,
      head: last ? last.validEnd : null,
    },
  }
}

export async function verifyWal(dir: string, maxRecordBytes: number): Promise<WalVerification> {
  const problems: string[] = []
  const warnings: string[] = []
  let names: string[] = []
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    warnings.push(`${dir} does not exist: the log is empty`)
  }
  const inspection = await inspectWal(dir, maxRecordBytes)
  const known = new Set(inspection.segments.map((s) => s.file))
  for (const name of names) {
    if (name.endsWith(SEGMENT_SUFFIX) && !known.has(name)) {
      problems.push(`${name}: not a segment name (expected 20 digits, the position of its first byte)`)
    }
  }

  const segments = inspection.segments
  segments.forEach((segment, index) => {
    const isTail = index === segments.length - 1
    for (const d of segment.damaged) {
      problems.push(
        `${segment.file} at position ${d.position} (offsets ${d.offset}-${d.end}): ${d.reason}; ${d.bytes} damaged bytes, skipped up to the next valid record at position ${segment.start + d.end}`,
      )
    }
    if (segment.stop) {
      const at = `${segment.file} at position ${segment.stop.position}`
      const lost = segment.end - segment.stop.position
      if (isTail) {
        warnings.push(
          `${at}: ${segment.stop.reason}; torn tail of ${lost} bytes, the next start truncates it`,
        )
      } else {
        problems.push(
          `${at}: ${segment.stop.reason}; ${lost} bytes to the end of this sealed segment are unreadable`,
        )
      }
    }
    const previous = segments[index - 1]
    if (previous) {
      if (segment.start < previous.end) {
        problems.push(
          `${segment.file} starts at ${segment.start}, inside ${previous.file} (which ends at ${previous.end}): positions overlap`,
        )
      } else if (segment.start > previous.end) {
        warnings.push(
          `gap of ${segment.start - previous.end} bytes between ${previous.file} and ${segment.file}: the log restarted at a sink's cursor`,
        )
      }
    }
  })

  const kept = inspection.kept
  if (kept.length > 0) {
    const bytes = kept.reduce((n, k) => n + k.bytes, 0)
    warnings.push(
      `${kept.length} damaged range(s), ${bytes} bytes, skipped and kept aside in ${join(dir, DAMAGED_DIR)} (${kept.map((k) => k.file).join(', ')}): look at them and the disk, then remove them`,
    )
  }

  return {
    ok: problems.length === 0,
    problems,
    warnings,
    segments: segments.length,
    records: inspection.totals.records,
    bytes: inspection.totals.bytes,
    oldest: inspection.totals.oldest,
    head: inspection.totals.head,
    kept,
  }
}
