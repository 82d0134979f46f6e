/**
 * Segment files. A segment is named by the log position of its first byte, 20 decimal digits
 * (enough for any u64), so a plain sort of the names is the log order and a position maps to its
 * file without an index: the segment holding position p is the last one whose start ≤ p.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'

export const SEGMENT_SUFFIX = '.wal'
const NAME = /^(\d{20})\.wal$/

export interface SegmentFile {
  /** File name, e.g. `00000000000000000000.wal`. */
  readonly name: string
  readonly path: string
  /** Log position of the segment's first byte. */
  readonly start: number
}

export function segmentName(start: number): string {
  if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`invalid WAL position ${start}`)
  return `${String(start).padStart(20, '0')}${SEGMENT_SUFFIX}`
}

/** The start position a segment file name encodes, or undefined when it is not a segment name. */
export function parseSegmentName(name: string): number | undefined {
  const match = NAME.exec(name)
  if (!match) return undefined
  const start = Number(match[1])
  return Number.isSafeInteger(start) ? start : undefined
}

/** The segments in `dir`, oldest first; other files are ignored; a missing dir has none. */
export async function listSegments(dir: string): Promise<SegmentFile[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const segments: SegmentFile[] = []
  for (const name of names) {
    const start = parseSegmentName(name)
    if (start !== undefined) segments.push({ name, path: join(dir, name), start })
  }
  return segments.sort((a, b) => a.start - b.start)
}

/** Index of the segment that holds `position` (last start ≤ position), or -1 if it precedes them all. */
export function segmentIndexAt(segments: readonly { readonly start: number }[], position: number): number {
  let lo = 0
  let hi = segments.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    if (segments[mid].start <= position) {
      found = mid
      lo = mid + 1
    } else {
      hi = mid - 1
    }
  }
  return found
}
