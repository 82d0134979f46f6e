/**
 * One writer per WAL directory. Two processes appending to the same segments would interleave
 * records and corrupt the log, so the writer takes `LOCK` (its pid) before recovery. A lock left
 * by a process that no longer runs (kill -9) is taken over; one held by a live process refuses
 * the start with an error naming that pid.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { spillwayError } from '../errors.ts'

export interface DirLock {
  release(): void
}

export function lockDirectory(dir: string): DirLock {
  const file = join(dir, 'LOCK')
  const release = () => rmSync(file, { force: true })
  try {
    const fd = openSync(file, 'wx')
    writeSync(fd, `${process.pid}\n`)
    closeSync(fd)
    return { release }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  }
  const holder = Number.parseInt(readFileSync(file, 'utf8'), 10)
  if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
    throw spillwayError(
      'SPW_ERR_WAL_LOCKED',
      `${dir} is in use by process ${holder}; one server per data directory (give each its own SPILLWAY_DATA_DIR)`,
    )
  }
  // Stale: its process is gone (kill -9, power loss). Take it over.
  writeFileSync(file, `${process.pid}\n`)
  return { release }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
