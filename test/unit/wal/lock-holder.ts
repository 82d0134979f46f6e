/**
 * A process that takes data-directory locks for lock.test.ts. Commands come one JSON line at a
 * time on stdin, answers go one JSON line at a time to stdout:
 * - `{"dir", "at"}`: spin until the wall clock reaches `at` (ms, sub-ms precision), so several
 *   processes call lockDirectory at the same instant, then answer `{"ok"}` or `{"ok":false,"error"}`.
 *   A lock taken is held until the process ends.
 * Started with a directory argument, it locks that directory at once, answers, and runs until it
 * is killed (stdin is not read: its parent may be gone).
 */
import { createInterface } from 'node:readline'
import { type DirLock, lockDirectory } from '../../../src/wal/lock.ts'

const held: DirLock[] = []
const now = () => performance.timeOrigin + performance.now()

function attempt(dir: string): { ok: boolean; pid: number; error?: string } {
  try {
    held.push(lockDirectory(dir))
    return { ok: true, pid: process.pid }
  } catch (error) {
    return { ok: false, pid: process.pid, error: (error as Error).message }
  }
}

const answer = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`)

if (process.argv[2]) {
  answer(attempt(process.argv[2]))
  setInterval(() => {}, 1 << 30)
} else {
  answer({ ready: true, pid: process.pid })
  serve()
}

function serve(): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    const { dir, at } = JSON.parse(line) as { dir: string; at: number }
    while (now() < at) {
      // The barrier: every process leaves this loop at the same instant.
    }
    answer(attempt(dir))
  })
  // Runs (holding what it locked) until the parent closes stdin or kills it.
  process.stdin.on('end', () => process.exit(0))
}
