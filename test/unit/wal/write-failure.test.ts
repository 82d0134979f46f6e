import assert from 'node:assert/strict'
import type { FileHandle } from 'node:fs/promises'
import { readdir } from 'node:fs/promises'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { payload, TestIo, tempDir, walOptions } from './helpers.ts'

/** A disk that is full while `full` is set: every write fails with a real ENOSPC error. */
class FullDiskIo extends TestIo {
  full = false

  override async writev(file: FileHandle, buffers: Buffer[], position: number): Promise<number> {
    if (this.full) {
      this.writes++
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 })
    }
    return super.writev(file, buffers, position)
  }
}

async function open(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t)
  const options = walOptions(dir)
  const io = new FullDiskIo()
  const wal = new WalWriter(options, new WalSharedState(), undefined, io)
  await wal.open()
  t.after(() => wal.close())
  return { wal, io, walDir: options.dir }
}

test('writeFailure names the cause after a failed group, until a group succeeds', async (t) => {
  const { wal, io } = await open(t)
  await wal.append(payload(1))
  assert.equal(await wal.writeFailure(), undefined)

  io.full = true
  await assert.rejects(wal.append(payload(2)), /ENOSPC/)
  const failure = await wal.writeFailure()
  assert.equal(failure?.reason, 'no space left on device (ENOSPC)')
  assert.equal(failure?.phase, 'write')

  io.full = false
  await wal.append(payload(3))
  assert.equal(await wal.writeFailure(), undefined)
})

test('while writes fail, a probe clears the failure once the disk takes writes again, with no append', async (t) => {
  const { wal, io, walDir } = await open(t)
  io.full = true
  await assert.rejects(wal.append(payload(1)), /ENOSPC/)
  assert.ok(await wal.writeFailure(), 'the probe fails too while the disk is full')

  // Probes are at most once a second: asked again at once, no new write is tried.
  const writes = io.writes
  assert.ok(await wal.writeFailure())
  assert.equal(io.writes, writes)

  io.full = false
  await sleep(1100)
  assert.equal(await wal.writeFailure(), undefined, 'the probe wrote: writes work again')
  assert.deepEqual(
    (await readdir(walDir)).filter((name) => !name.endsWith('.wal')),
    [],
    'the probe file is deleted',
  )
  assert.ok((await wal.append(payload(2))) > 0)
})
