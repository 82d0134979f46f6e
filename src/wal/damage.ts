/**
 * Damaged WAL bytes, kept aside. Before a reader skips bytes that are not a valid record (up to the
 * next record resynchronisation finds, see scan.ts), it copies them to
 * `<walDir>/damaged/<segment file>.<from>-<to>.damaged` (offsets in that segment file), so the
 * segment can later be deleted without the evidence going with it.
 *
 * The copy is written under a temporary name, fsync'd, then linked to its final name. link() fails
 * when the name exists, so of every reader that meets the same damage (one per sink, and again
 * after a restart) exactly one creates the file — and only that one counts the damage.
 */
import { randomBytes } from 'node:crypto'
import { type FileHandle, link, mkdir, open, readdir, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { syncDir } from '../shared/durable-file.ts'
import { readFully, SCAN_CHUNK_BYTES } from './scan.ts'
import type { WalSharedState } from './shared-state.ts'

export const DAMAGED_DIR = 'damaged'
const SUFFIX = '.damaged'
const NAME = /^(.+)\.(\d+)-(\d+)\.damaged$/

export function damagedName(segment: string, from: number, to: number): string {
  return `${segment}.${from}-${to}${SUFFIX}`
}

export interface KeptDamage {
  readonly path: string
  /** false: an earlier reader (another sink, an earlier run) kept these bytes already. */
  readonly created: boolean
}

/** Copies bytes [from, to) of the segment `segment` (open as `source`) aside, durably, once. */
export async function keepDamaged(
  walDir: string,
  source: FileHandle,
  segment: string,
  from: number,
  to: number,
): Promise<KeptDamage> {
  const dir = join(walDir, DAMAGED_DIR)
  const path = join(dir, damagedName(segment, from, to))
  if (await exists(path)) return { path, created: false }
  if ((await mkdir(dir, { recursive: true })) !== undefined) await syncDir(walDir)

  const temp = join(dir, `.${damagedName(segment, from, to)}.${randomBytes(6).toString('hex')}.tmp`)
  const out = await open(temp, 'wx', 0o644)
  try {
    const buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(1, to - from)))
    for (let at = from; at < to; ) {
      const got = await readFully(source, buf, Math.min(buf.length, to - at), at)
      if (got === 0) break // the segment is shorter than it was: keep what is left
      await out.write(buf, 0, got, at - from)
      at += got
    }
    await out.sync()
  } finally {
    await out.close()
  }
  let created = true
  try {
    await link(temp, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      await unlink(temp).catch(() => {})
      throw error
    }
    created = false
  }
  await unlink(temp)
  if (created) await syncDir(dir)
  return { path, created }
}

export interface KeptFile {
  readonly file: string
  readonly segment: string
  /** Offsets of the kept bytes in the segment file. */
  readonly from: number
  readonly to: number
  readonly bytes: number
}

/** What `<walDir>/damaged/` holds (oldest segment first); none when it does not exist. */
export async function listKeptDamage(walDir: string): Promise<KeptFile[]> {
  const dir = join(walDir, DAMAGED_DIR)
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const kept: KeptFile[] = []
  for (const file of names) {
    const match = NAME.exec(file)
    if (!match) continue // a temporary copy left by a crash, or an operator's note
    const size = await stat(join(dir, file)).then(
      (s) => s.size,
      () => -1,
    )
    if (size < 0) continue // removed while we looked
    kept.push({ file, segment: match[1], from: Number(match[2]), to: Number(match[3]), bytes: size })
  }
  return kept.sort((a, b) => a.segment.localeCompare(b.segment) || a.from - b.from)
}

export interface DamageSummary {
  /** Damaged ranges found and skipped by this process (the `wal_damaged_*_total` metrics). */
  readonly ranges: number
  readonly bytes: number
  /** Where the damaged bytes are kept, and what is there now (earlier runs' too, until removed). */
  readonly keptIn: string
  readonly keptFiles: number
  readonly keptBytes: number
}

/** For `/ready` details: undefined while there is no damage to tell about. */
export async function damageSummary(
  walDir: string,
  state: WalSharedState,
): Promise<DamageSummary | undefined> {
  const kept = await listKeptDamage(walDir)
  const ranges = state.damagedRanges
  if (ranges === 0 && kept.length === 0) return undefined
  return {
    ranges,
    bytes: state.damagedBytes,
    keptIn: join(walDir, DAMAGED_DIR),
    keptFiles: kept.length,
    keptBytes: kept.reduce((n, k) => n + k.bytes, 0),
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}
