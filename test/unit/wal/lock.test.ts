import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { isSpillwayError } from '../../../src/errors.ts'
import { lockDirectory } from '../../../src/wal/lock.ts'

async function dir(t: TestContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'spillway-lock-'))
  t.after(() => rm(d, { recursive: true, force: true }))
  return d
}

test('the lock is taken, and released on release()', async (t) => {
  const d = await dir(t)
  const lock = lockDirectory(d)
  assert.ok(existsSync(join(d, 'LOCK')))
  lock.release()
  assert.ok(!existsSync(join(d, 'LOCK')))
})

test('a directory locked by another live process refuses, naming its pid', async (t) => {
  const d = await dir(t)
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'])
  t.after(() => other.kill('SIGKILL'))
  writeFileSync(join(d, 'LOCK'), `${other.pid}\n`)
  assert.throws(
    () => lockDirectory(d),
    (error: unknown) =>
      isSpillwayError(error, 'SPW_ERR_WAL_LOCKED') && error.message.includes(String(other.pid)),
  )
})

test('a lock left by a process that is gone (kill -9) is taken over', async (t) => {
  const d = await dir(t)
  const gone = spawnSync(process.execPath, [
    '-e',
    'process.stdout.write(String(process.pid))',
  ]).stdout.toString()
  writeFileSync(join(d, 'LOCK'), `${gone}\n`)
  const lock = lockDirectory(d)
  lock.release()
})
