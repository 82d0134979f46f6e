/**
 * DeliveryHost through a real worker thread, with the memory sink (queried through the thread,
 * since its events live there) and a real WalWriter writing the log the thread reads.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import type { OptionName } from '../../../src/config/schema.ts'
import { DeliveryHost } from '../../../src/delivery/host.ts'
import { isSpillwayError } from '../../../src/errors.ts'
import { encodeEvents } from '../../../src/intake/serialize.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { numberedEvents } from '../../helpers/events.ts'
import { eventually, silent, tempDir } from './helpers.ts'

async function setup(
  t: { after: (fn: () => Promise<void> | void) => void },
  overrides: Partial<Record<OptionName, unknown>> = {},
) {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-host-'))
  // Cleanups run last-registered first, and the directory goes only after the thread stopped.
  const cleanups: (() => Promise<unknown> | unknown)[] = []
  const cleanup = (fn: () => Promise<unknown> | unknown) => cleanups.push(fn)
  t.after(async () => {
    for (const fn of cleanups.reverse()) await fn()
    await rm(dataDir, { recursive: true, force: true })
  })
  const config = loadConfig({
    env: {},
    overrides: { dataDir, sinks: ['memory'], logLevel: 'silent', deliveryLingerMs: 0, ...overrides },
  })
  const state = new WalSharedState()
  const maxRecordBytes = 1 << 20
  const openWal = async (minHead: number) => {
    const wal = new WalWriter(
      {
        dir: join(dataDir, 'wal'),
        segmentBytes: config.walSegmentBytes,
        groupCommitBytes: config.walGroupCommitBytes,
        groupCommitDelayMs: 0,
        maxRecordBytes,
      },
      state,
      silent,
    )
    await wal.open({ minHead })
    return wal
  }
  return { config, state, dataDir, openWal, maxRecordBytes, cleanup }
}

const highestCursor = (state: WalSharedState, n: number) =>
  Math.max(0, ...Array.from({ length: n }, (_, slot) => state.cursor(slot)))

async function totalsEventually(host: DeliveryHost, expected: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const totals = await host.totals({ event_name: 'product_view' })
    if (totals.total_events === expected) return
    if (Date.now() > deadline) assert.fail(`${totals.total_events} of ${expected} events delivered`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('the delivery thread publishes the cursors before start resolves, delivers the WAL and answers ready()', async (t) => {
  const { config, state, openWal, maxRecordBytes, cleanup } = await setup(t)
  const host = await DeliveryHost.start({ config, state, logger: silent, maxRecordBytes })
  cleanup(() => host.stop({ drain: false }))
  assert.equal(state.cursor(0), 0, 'cursor published')
  const wal = await openWal(highestCursor(state, 1))
  cleanup(() => wal.close())

  assert.deepEqual(await host.ready(), { ok: true, sinks: { memory: { ok: true } } })
  await wal.append(encodeEvents(numberedEvents(0, 10)), { durable: true })
  await wal.append(encodeEvents(numberedEvents(10, 5)), { durable: true })
  await totalsEventually(host, 15)
  await eventually(() => state.cursor(0) === state.durableHead, 'cursor at the durable head')

  const stats = await host.stats()
  assert.equal(stats.running, true)
  assert.equal(stats.sinks.length, 1)
  assert.equal(stats.sinks[0].sink, 'memory')
  assert.equal(stats.sinks[0].deliveredRows, 15)
  assert.equal(stats.sinks[0].backlogBytes, 0)
  assert.deepEqual(await host.groups({ event_name: 'product_view', group_by: 'day' }), [
    { group: '2024-08-12T00:00:00Z', total_events: 15, unique_users: 7 },
  ])
})

test('stop with drain delivers up to the head and ends the thread', async (t) => {
  const { config, state, openWal, maxRecordBytes, dataDir, cleanup } = await setup(t, {
    deliveryLingerMs: 60_000,
  })
  const host = await DeliveryHost.start({ config, state, logger: silent, maxRecordBytes })
  cleanup(() => host.stop({ drain: false }))
  const wal = await openWal(highestCursor(state, 1))
  cleanup(() => wal.close())
  await wal.append(encodeEvents(numberedEvents(0, 7)), { durable: true })
  const head = state.durableHead
  await host.stop({ drain: true })
  assert.equal(host.running, false)
  assert.equal(state.cursor(0), head, 'drained to the head')
  // the memory sink has no cursor of its own: the file says where the next start resumes
  const { CursorFile } = await import('../../../src/delivery/cursor-file.ts')
  assert.equal(await new CursorFile(join(dataDir, 'cursors'), 'memory').load(), head)
})

test('a dead delivery thread is restarted and delivery resumes from the cursor', async (t) => {
  const { config, state, openWal, maxRecordBytes, cleanup } = await setup(t)
  const host = await DeliveryHost.start({ config, state, logger: silent, maxRecordBytes, restartDelayMs: 10 })
  cleanup(() => host.stop({ drain: false }))
  const wal = await openWal(highestCursor(state, 1))
  cleanup(() => wal.close())
  await wal.append(encodeEvents(numberedEvents(0, 3)), { durable: true })
  await totalsEventually(host, 3)
  // The cursor is published after it is saved: from then on a restart resumes past these events.
  await eventually(() => state.cursor(0) === state.durableHead, 'cursor saved and published')
  const cursor = state.cursor(0)

  await host.simulateCrash()
  await assert.rejects(host.totals({ event_name: 'product_view' }), (error) =>
    isSpillwayError(error, 'SPW_ERR_QUERY_FAILED'),
  )
  assert.equal((await host.ready()).ok, false)
  await eventually(() => host.running, 'the thread restarted', 5000)
  assert.equal(host.restarts, 1)
  assert.equal(state.cursor(0), cursor, 'the new thread resumed from the cursor file')
  // The memory sink forgot everything with its thread; only new events arrive, none twice.
  await wal.append(encodeEvents(numberedEvents(3, 4)), { durable: true })
  await totalsEventually(host, 4)
})

test('start rejects with the error of a sink that cannot open', async (t) => {
  const dir = await tempDir(t, 'spillway-host-')
  // a regular file where the database's directory should be
  await writeFile(join(dir, 'not-a-dir'), '')
  const { config, state } = await setup(t, {
    sinks: ['duckdb'],
    duckdbPath: join(dir, 'not-a-dir', 'x.duckdb'),
  })
  await assert.rejects(DeliveryHost.start({ config, state, logger: silent }), (error: Error) => {
    assert.match(error.message, /not-a-dir|ENOTDIR|duckdb/i)
    return true
  })
})

test('after stop, queries fail with SPW_ERR_QUERY_FAILED and ready() reports every sink down', async (t) => {
  const { config, state, cleanup } = await setup(t)
  const host = await DeliveryHost.start({ config, state, logger: silent })
  cleanup(() => host.stop({ drain: false }))
  await host.stop({ drain: false })
  await assert.rejects(host.totals({ event_name: 'product_view' }), (error) =>
    isSpillwayError(error, 'SPW_ERR_QUERY_FAILED'),
  )
  const ready = await host.ready()
  assert.equal(ready.ok, false)
  assert.equal(ready.sinks['memory'].ok, false)
  assert.deepEqual(await host.stats(), { running: false, restarts: 0, sinks: [] })
})
