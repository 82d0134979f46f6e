import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** What a test context offers for cleanup (node:test's TestContext). */
export interface Cleanup {
  after(fn: () => Promise<void> | void): void
}

/** A fresh directory under the OS temp dir; the caller removes it with removeTempDir. */
export function makeTempDir(prefix = 'spillway-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/**
 * Removes a temp directory — unless KEEP_DATA=1 is set, which keeps it and prints its path, to
 * look at what a failed test left behind.
 */
export async function removeTempDir(dir: string): Promise<void> {
  if (process.env['KEEP_DATA']) {
    process.stderr.write(`KEEP_DATA: kept ${dir}\n`)
    return
  }
  await rm(dir, { recursive: true, force: true })
}

/**
 * A temp directory removed when the test ends. node:test runs `after` hooks in the order they
 * were added, so when a process writes into the directory, stop it in an `after` added BEFORE
 * this call, or use makeTempDir and remove the directory in your own hook after the stop.
 */
export async function tempDir(t: Cleanup, prefix = 'spillway-test-'): Promise<string> {
  const dir = await makeTempDir(prefix)
  t.after(() => removeTempDir(dir))
  return dir
}
