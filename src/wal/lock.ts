/**
 * One writer per WAL directory. Two processes appending to the same segments would interleave
 * records and corrupt the log, so the writer locks `LOCK` before recovery.
 *
 * The lock is the kernel's: an exclusive, non-blocking lock (fs-native-extensions; an open file
 * description lock on Linux, flock elsewhere) on a descriptor kept open for as long as the lock is
 * held. Taking it is one atomic step, so of any number of processes trying at once exactly one
 * wins; and the kernel drops it when its holder dies, however it dies (kill -9 included), so a
 * `LOCK` file left behind is simply locked again. No pid is ever judged alive or dead (a zombie
 * or a recycled pid would lie). The holder writes its pid into the file only so that the error
 * of a refused start can tell the operator who holds it.
 *
 * The file is never deleted: a process that opened it just before an unlink would lock the old
 * inode while the next one locks a new file of the same name, and both would hold "the" lock.
 */
import { closeSync, constants, ftruncateSync, openSync, readSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { spillwayError } from '../errors.ts'

export interface DirLock {
  release(): void
}

interface NativeLocks {
  /** true when the exclusive lock was taken, false when another description holds it. */
  tryLock(fd: number): boolean
  unlock(fd: number): void
}

const native = createRequire(import.meta.url)('fs-native-extensions') as NativeLocks

export function lockDirectory(dir: string): DirLock {
  const file = join(dir, 'LOCK')
  // Not truncated on open: the holder's pid must stay readable for the refusal below.
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644)
  let locked: boolean
  try {
    locked = native.tryLock(fd)
  } catch (error) {
    closeSync(fd)
    throw error
  }
  if (!locked) {
    const holder = readPid(fd)
    closeSync(fd)
    throw spillwayError(
      'SPW_ERR_WAL_LOCKED',
      `${dir} is locked by ${holder ? `process ${holder} (the pid in ${file})` : 'another process'}; ` +
        'one server per data directory (give each its own SPILLWAY_DATA_DIR)',
    )
  }
  try {
    ftruncateSync(fd, 0)
    writeSync(fd, `${process.pid}\n`, 0)
  } catch {
    // Only informational: the lock is held without it.
  }
  let held = true
  return {
    release() {
      if (!held) return
      held = false
      try {
        ftruncateSync(fd, 0)
      } catch {}
      try {
        native.unlock(fd)
      } finally {
        closeSync(fd)
      }
    },
  }
}

/** The pid the holder wrote, if it did already (it writes right after it locked). */
function readPid(fd: number): number | undefined {
  const buffer = Buffer.alloc(32)
  let n = 0
  try {
    n = readSync(fd, buffer, 0, buffer.length, 0)
  } catch {
    return undefined
  }
  const pid = Number.parseInt(buffer.subarray(0, n).toString('utf8'), 10)
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}
