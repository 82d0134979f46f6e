/**
 * Logs of records shaped like the ones Spillway writes (NDJSON lines, see FORMAT.md "Finding a
 * record again"), and the damage a disk does to them: a flipped bit, a zeroed sector.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { segmentName } from '../../../src/wal/segment.ts'
import type { WalRecord } from '../../../src/wal/types.ts'
import { type OpenedWal, openWal } from './helpers.ts'

/** Bytes of one record on disk: an 8-byte header and a 92-byte payload. */
export const RECORD = 100

type After = { after: (fn: () => Promise<void> | void) => void }

/** A 92-byte NDJSON line whose event_id is `e-<i>`. */
export function line(i: number): Buffer {
  const head = `{"event_id":"e-${i}","pad":"`
  const tail = '"}\n'
  return Buffer.from(head + 'x'.repeat(RECORD - 8 - head.length - tail.length) + tail)
}

export interface SealedLog extends OpenedWal {
  /** The sealed segment holding records 0 … count-1, at [0, count × RECORD). */
  readonly sealed: string
}

/**
 * `count` records in segment 0, sealed: one more record (`e-<count>`) starts the next segment.
 * With `seal: false` the `count` records stay in the active segment.
 */
export async function sealedLog(t: After, dir: string, count: number, seal = true): Promise<SealedLog> {
  const opened = await openWal(t, dir, { segmentBytes: count * RECORD, maxRecordBytes: 64 * 1024 })
  for (let i = 0; i < count; i += 250) {
    const n = Math.min(250, count - i)
    await Promise.all(Array.from({ length: n }, (_, k) => opened.wal.append(line(i + k), { durable: true })))
  }
  if (seal) await opened.wal.append(line(count), { durable: true })
  return { ...opened, sealed: join(opened.options.dir, segmentName(0)) }
}

/** Applies `change` to the bytes of `file` and writes them back. */
export async function damage(file: string, change: (buf: Buffer) => void): Promise<Buffer> {
  const buf = await readFile(file)
  const before = Buffer.from(buf)
  change(buf)
  await writeFile(file, buf)
  return before
}

/** Flips one bit in the payload of record `i` of a log of RECORD-byte records. */
export function flipPayload(i: number): (buf: Buffer) => void {
  return (buf) => {
    buf[i * RECORD + 8 + 40] ^= 0x04
  }
}

export function ids(records: readonly WalRecord[]): string[] {
  return records.map((r) => (JSON.parse(r.payload.toString()) as { event_id: string }).event_id)
}

/** `e-<from>` … `e-<to - 1>` without the ones in `lost`. */
export function expectedIds(from: number, to: number, lost: readonly number[] = []): string[] {
  const out: string[] = []
  for (let i = from; i < to; i++) if (!lost.includes(i)) out.push(`e-${i}`)
  return out
}
