import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, test } from 'node:test'
import { SpillwayClient, type SpillwayClientError } from '../../../packages/client/src/index.ts'
import { FileQueue } from '../../../packages/client/src/node.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'
import { startScriptedServer } from './scripted-server.ts'

const QUEUE_MODULE = new URL('../../../packages/client/src/node.ts', import.meta.url).href

async function tempDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await makeTempDir('spillway-client-queue-')
  t.after(() => removeTempDir(dir))
  return dir
}

const stored = (i: number) => ({
  id: `id-${i}`,
  line: JSON.stringify({ event_id: `id-${i}`, event_name: 'q', n: i }),
})

describe('FileQueue', () => {
  test('what was appended and not removed comes back in order at the next open, and only that is kept', async (t) => {
    const dir = await tempDir(t)
    const queue = await FileQueue.open(dir)
    assert.deepEqual(queue.recovered, [])
    await queue.append([stored(1), stored(2), stored(3)])
    await queue.append([stored(4), stored(5)])
    queue.remove(['id-2', 'id-4', 'unknown'])
    await queue.close()
    const again = await FileQueue.open(dir)
    t.after(() => again.close())
    assert.deepEqual(
      again.recovered.map((e) => e.id),
      ['id-1', 'id-3', 'id-5'],
    )
    assert.deepEqual(again.recovered[0], stored(1))
    const text = await readFile(join(dir, 'events.log'), 'utf8')
    assert.equal(text, [1, 3, 5].map((i) => `+${stored(i).line}\n`).join(''))
  })

  test('a torn last line (a crash mid-write) and damaged lines are skipped, counted, and dropped from the file', async (t) => {
    const dir = await tempDir(t)
    const lines = [`+${stored(1).line}`, 'garbage', `+${stored(2).line}`, `-["id-1"]`, `+${stored(3).line}`]
    await writeFile(join(dir, 'events.log'), `${lines.join('\n')}\n+{"event_id":"id-4","eve`)
    const queue = await FileQueue.open(dir)
    t.after(() => queue.close())
    assert.deepEqual(
      queue.recovered.map((e) => e.id),
      ['id-2', 'id-3'],
    )
    assert.equal(queue.skippedLines, 2)
    assert.equal(await readFile(join(dir, 'events.log'), 'utf8'), `+${stored(2).line}\n+${stored(3).line}\n`)
  })

  test('an append has reached the file when it resolves; once nothing is left the file is emptied', async (t) => {
    const dir = await tempDir(t)
    const queue = await FileQueue.open(dir)
    await queue.append([stored(1), stored(2)])
    assert.equal(await readFile(join(dir, 'events.log'), 'utf8'), `+${stored(1).line}\n+${stored(2).line}\n`)
    queue.remove(['id-1', 'id-2'])
    await queue.close()
    assert.equal((await stat(join(dir, 'events.log'))).size, 0)
  })

  test('a file mostly of settled events is rewritten with the live ones while running', async (t) => {
    const dir = await tempDir(t)
    const queue = await FileQueue.open(dir, { compactBytes: 2000 })
    for (let i = 0; i < 100; i++) await queue.append([stored(i)])
    queue.remove(Array.from({ length: 95 }, (_, i) => `id-${i}`))
    await queue.append([stored(100)])
    // close() waits for the writer, which compacts after the write that made the file mostly dead.
    await queue.close()
    const size = (await stat(join(dir, 'events.log'))).size
    assert.ok(size < 2000, `${size} bytes after compaction`)
    const text = await readFile(join(dir, 'events.log'), 'utf8')
    assert.deepEqual(
      [...text.matchAll(/"event_id":"(id-\d+)"/g)].map((m) => m[1]),
      ['id-95', 'id-96', 'id-97', 'id-98', 'id-99', 'id-100'],
    )
  })

  test('one process per directory; the lock goes with its holder when that is SIGKILLed', async (t) => {
    const dir = await tempDir(t)
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { FileQueue } = await import(${JSON.stringify(QUEUE_MODULE)}); await FileQueue.open(${JSON.stringify(dir)}); console.log('open'); setInterval(() => {}, 1000)`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    t.after(() => holder.kill('SIGKILL'))
    const [line] = await once(createInterface({ input: holder.stdout! }), 'line')
    assert.equal(line, 'open')
    await assert.rejects(
      FileQueue.open(dir),
      (e: SpillwayClientError) =>
        e.code === 'SPW_ERR_CLIENT_LOCKED' && e.message.includes('in use by another client'),
    )
    holder.kill('SIGKILL')
    await once(holder, 'exit')
    const queue = await FileQueue.open(dir)
    await queue.close()
  })

  test('with a client: events tracked while the server is away stay on disk through a restart, then are delivered once', async (t) => {
    const dir = await tempDir(t)
    const first = new SpillwayClient({
      url: 'http://127.0.0.1:9',
      store: await FileQueue.open(dir),
      retry: { minMs: 10, maxMs: 20 },
    })
    const tracked: string[] = []
    for (let i = 0; i < 20; i++) {
      tracked.push((await first.track({ event_name: 'q', user_id: `u${i}`, channel: 'api' })).event_id)
    }
    await assert.rejects(
      first.close({ timeoutMs: 100 }),
      (e: SpillwayClientError) => e.code === 'SPW_ERR_CLIENT_TIMEOUT',
    )
    assert.equal(first.stats.dropped, 0)

    const server = await startScriptedServer()
    t.after(() => server.close())
    const second = new SpillwayClient({ url: server.url, store: await FileQueue.open(dir) })
    assert.equal(second.stats.queued, 20)
    await second.close()
    assert.deepEqual(
      server.accepted.map((e) => e['event_id']),
      tracked,
    )
    assert.equal((await stat(join(dir, 'events.log'))).size, 0)
  })
})
