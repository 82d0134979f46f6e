import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface, type Interface } from 'node:readline'
import { type TestContext, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { isSpillwayError } from '../../../src/errors.ts'
import { type DirLock, lockDirectory } from '../../../src/wal/lock.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'

const HOLDER = new URL('./lock-holder.ts', import.meta.url).pathname

interface Answer {
  readonly ok?: boolean
  readonly ready?: boolean
  readonly pid: number
  readonly error?: string
}

async function dir(t: TestContext): Promise<string> {
  const d = await makeTempDir('spillway-lock-')
  t.after(() => removeTempDir(d))
  return d
}

/** A lock-holder.ts process and its answers, one per line. */
class Holder {
  readonly proc: ChildProcess
  readonly #lines: Interface
  readonly #queue: Answer[] = []
  readonly #waiting: { resolve: (answer: Answer) => void; reject: (error: Error) => void }[] = []

  constructor(args: string[] = []) {
    this.proc = spawn(process.execPath, [HOLDER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
    this.#lines = createInterface({ input: this.proc.stdout! })
    this.#lines.on('line', (line) => {
      const answer = JSON.parse(line) as Answer
      const waiter = this.#waiting.shift()
      if (waiter) waiter.resolve(answer)
      else this.#queue.push(answer)
    })
    this.proc.once('exit', (code, signal) => {
      for (const waiter of this.#waiting.splice(0))
        waiter.reject(new Error(`lock holder exited (${code ?? signal})`))
    })
  }

  next(): Promise<Answer> {
    const queued = this.#queue.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  send(command: unknown): void {
    this.proc.stdin!.write(`${JSON.stringify(command)}\n`)
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    const exited = once(this.proc, 'exit')
    this.proc.kill('SIGKILL')
    await exited
  }
}

test('the lock is taken, and release() lets the next holder in', async (t) => {
  const d = await dir(t)
  const lock = lockDirectory(d)
  assert.equal(readFileSync(join(d, 'LOCK'), 'utf8'), `${process.pid}\n`)
  lock.release()
  lock.release() // twice is harmless
  const again = lockDirectory(d)
  again.release()
})

test('a held directory is refused to a second lockDirectory, in the same process too', async (t) => {
  const d = await dir(t)
  const lock = lockDirectory(d)
  t.after(() => lock.release())
  assert.throws(
    () => lockDirectory(d),
    (error: unknown) => isSpillwayError(error, 'SPW_ERR_WAL_LOCKED') && error.message.includes(d),
  )
})

test('a directory locked by another live process refuses, naming the directory and the pid in LOCK', async (t) => {
  const d = await dir(t)
  const other = new Holder([d])
  t.after(() => other.kill())
  const answer = await other.next()
  assert.equal(answer.ok, true, answer.error)
  assert.throws(
    () => lockDirectory(d),
    (error: unknown) =>
      isSpillwayError(error, 'SPW_ERR_WAL_LOCKED') &&
      error.message.includes(d) &&
      error.message.includes(`process ${answer.pid}`),
  )
})

test('exactly one of 2 to 4 processes locking at the same instant gets the lock, 60 times out of 60', {
  timeout: 120_000,
}, async (t) => {
  const base = await dir(t)
  const holders = Array.from({ length: 4 }, () => new Holder())
  t.after(() => Promise.all(holders.map((h) => h.kill())))
  for (const h of holders) assert.equal((await h.next()).ready, true)

  const failures: string[] = []
  for (let round = 0; round < 60; round++) {
    const d = join(base, `round-${round}`)
    await mkdir(d)
    const racers = holders.slice(0, 2 + (round % 3))
    // Every racer spins until the same instant, well after the command reached it.
    const at = performance.timeOrigin + performance.now() + 40
    for (const h of racers) h.send({ dir: d, at })
    const answers = await Promise.all(racers.map((h) => h.next()))
    const winners = answers.filter((a) => a.ok)
    if (winners.length !== 1) {
      failures.push(`round ${round}: ${winners.length} of ${racers.length} got the lock`)
      continue
    }
    for (const loser of answers.filter((a) => !a.ok)) {
      if (!loser.error?.includes(d))
        failures.push(`round ${round}: refusal does not name ${d}: ${loser.error}`)
    }
  }
  assert.deepEqual(failures, [])
})

test('a LOCK file holding pid 1 (a process that always runs) does not refuse a start', async (t) => {
  const d = await dir(t)
  writeFileSync(join(d, 'LOCK'), '1\n')
  const lock = lockDirectory(d)
  assert.equal(readFileSync(join(d, 'LOCK'), 'utf8'), `${process.pid}\n`)
  lock.release()
})

test('a LOCK file left half-written is locked again', async (t) => {
  const d = await dir(t)
  writeFileSync(join(d, 'LOCK'), '')
  lockDirectory(d).release()
  writeFileSync(join(d, 'LOCK'), 'not a pid')
  lockDirectory(d).release()
})

test('the lock of a SIGKILLed holder is free at once, even while it is an orphan no one reaps', async (t) => {
  const d = await dir(t)
  // The holder's parent exits first, so the holder is an orphan: once killed, whether its pid
  // disappears depends on the machine's init. The lock must not depend on it.
  const parent = spawn(
    process.execPath,
    [
      '-e',
      `const { spawn } = require('node:child_process')
       const c = spawn(process.execPath, [${JSON.stringify(HOLDER)}, ${JSON.stringify(d)}], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
       c.stdout.once('data', (d) => { process.stdout.write(d); process.exit(0) })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const [line] = await once(createInterface({ input: parent.stdout! }), 'line')
  const holder = JSON.parse(line as string) as Answer
  assert.equal(holder.ok, true, holder.error)
  t.after(() => {
    try {
      process.kill(holder.pid, 'SIGKILL')
    } catch {}
  })
  assert.throws(
    () => lockDirectory(d),
    (error: unknown) => isSpillwayError(error, 'SPW_ERR_WAL_LOCKED'),
  )

  process.kill(holder.pid, 'SIGKILL')
  // The kernel closes a dying process's files once its last thread has exited, a few ms after
  // the kill; a judge of pids would wait forever for this one (it stays a zombie here).
  const killedAt = Date.now()
  let lock: DirLock | undefined
  while (!lock && Date.now() - killedAt < 10_000) {
    try {
      lock = lockDirectory(d)
    } catch (error) {
      if (!isSpillwayError(error, 'SPW_ERR_WAL_LOCKED')) throw error
      await sleep(10)
    }
  }
  assert.ok(lock, `the lock was still held 10 s after process ${holder.pid} was killed`)
  t.diagnostic(`locked ${Date.now() - killedAt} ms after the kill; the holder is ${state(holder.pid)}`)
  lock.release()
})

test('a LOCK left behind by a SIGKILLed child process is locked again', async (t) => {
  const d = await dir(t)
  const child = new Holder([d])
  assert.equal((await child.next()).ok, true)
  await child.kill()
  assert.ok(existsSync(join(d, 'LOCK')))
  lockDirectory(d).release()
})

/** The process's state letter in /proc ('Z' zombie), or 'gone'. */
function state(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return 'gone'
  }
}
