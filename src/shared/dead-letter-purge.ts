/**
 * `spillway dlq purge|drop`: removing entries from the dead-letter directory while servers append
 * to it (dead-letter.ts, "Writers and `dlq purge`").
 */
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  jsonlFiles,
  parseEntry,
  type StoredDeadLetter,
  StoreLock,
} from './dead-letter-files.ts'
import { syncDir } from './durable-file.ts'

export interface DropOptions {
  /** Count what would be dropped; change nothing. */
  readonly dryRun?: boolean
  readonly lockTimeoutMs?: number
}

export interface DropReport {
  readonly dryRun: boolean
  /** Entries removed (or that would be). */
  readonly entries: number
  /** Bytes freed (or that would be), torn tails of crashed appends included. */
  readonly bytes: number
  /** Files removed because no entry was left in them. */
  readonly filesRemoved: number
}

/**
 * Removes the entries `select` picks, safely while servers append (see the header): file by file,
 * under the store's lock, the dropped lines are blanked and the file replaced; a file left with
 * no entry is removed. `select` sees every entry as it is under the lock, so an entry appended
 * after the caller looked is judged too, never lost unseen.
 */
export async function dropDeadLetters(
  dir: string,
  select: (stored: StoredDeadLetter) => boolean,
  options: DropOptions = {},
): Promise<DropReport> {
  const dryRun = options.dryRun ?? false
  const lock = new StoreLock(dir, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)
  let entries = 0
  let bytes = 0
  let filesRemoved = 0
  try {
    await removeLeftovers(dir, dryRun)
    for (const name of await jsonlFiles(dir)) {
      const unlock = await lock.take(0)
      try {
        const path = join(dir, name)
        let text: string
        try {
          text = await readFile(path, 'utf8')
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
          throw error
        }
        const lines = text.split('\n')
        // Text after the last newline is the torn tail of an append that never returned.
        const torn = lines.pop() ?? ''
        let dropped = 0
        let left = 0
        for (let i = 0; i < lines.length; i++) {
          if (lines[i].length === 0) continue
          const entry = parseEntry(lines[i])
          if (entry && select({ id: `${name}#${i + 1}`, file: name, line: i + 1, entry })) {
            lines[i] = ''
            dropped++
          } else {
            left++
          }
        }
        if (dropped === 0 && torn.length === 0) continue
        const kept = left === 0 ? '' : lines.map((line) => `${line}\n`).join('')
        entries += dropped
        bytes += Buffer.byteLength(text) - Buffer.byteLength(kept)
        if (dryRun) {
          if (left === 0) filesRemoved++
          continue
        }
        if (left === 0) {
          await unlink(path)
          filesRemoved++
        } else {
          const temporary = `${path}.purging`
          const file = await open(temporary, 'w')
          try {
            await file.writeFile(kept)
            await file.datasync()
          } finally {
            await file.close()
          }
          await rename(temporary, path)
        }
        await syncDir(dir)
      } finally {
        unlock()
      }
    }
  } finally {
    await lock.close()
  }
  return { dryRun, entries, bytes, filesRemoved }
}

/** A purge that died between writing its new file and renaming it leaves the new file behind. */
async function removeLeftovers(dir: string, dryRun: boolean): Promise<void> {
  if (dryRun) return
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw error
  }
  for (const name of names) {
    if (name.endsWith('.jsonl.purging')) await unlink(join(dir, name)).catch(() => {})
  }
}
