import assert from 'node:assert/strict'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { checkStoreLoss, SweptSinks, sweptSinksPath } from '../../../src/delivery/store-loss.ts'
import { isSpillwayError } from '../../../src/errors.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { segmentName } from '../../../src/wal/segment.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'

/** A data directory whose WAL starts at `oldest` (the segments below were deleted). */
async function dataDir(t: TestContext, oldest: number): Promise<string> {
  const dir = await makeTempDir('spillway-storeloss-')
  t.after(() => removeTempDir(dir))
  await mkdir(join(dir, 'wal'))
  await writeFile(join(dir, 'wal', segmentName(oldest)), '')
  await writeFile(join(dir, 'wal', segmentName(oldest + 65536)), '')
  return dir
}

function config(dir: string, acceptStoreLoss = false) {
  return loadConfig({
    env: {},
    overrides: { dataDir: dir, sinks: ['memory'], acceptStoreLoss, logLevel: 'silent' },
  })
}

/** A store keeping its cursor inside (like DuckDB), holding `cursor`. */
function store(cursor: number | null): MemorySink {
  const sink = new MemorySink({ transactional: true })
  sink.cursor = cursor
  return sink
}

/** A logger that keeps what it was given at warn. */
function recordingLogger() {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = []
  const logger = createLogger('silent')
  return {
    warnings,
    logger: Object.assign(Object.create(logger), {
      warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }),
    }),
  }
}

test('a store with no cursor, named in the sweep record, below the oldest segment: the start is refused', async (t) => {
  const dir = await dataDir(t, 131072)
  await new SweptSinks(dir).note(['memory'])
  await assert.rejects(
    checkStoreLoss(config(dir), [store(null)], createLogger('silent')),
    (error: unknown) =>
      isSpillwayError(error, 'SPW_ERR_SINK_STORE_LOST') &&
      /sink memory: its store .* holds no cursor/.test(error.message) &&
      error.message.includes('WAL positions 0 to 131072') &&
      error.message.includes('--accept-store-loss'),
  )
})

test('a store whose cursor went back below the oldest segment is refused too, naming its cursor', async (t) => {
  const dir = await dataDir(t, 131072)
  await new SweptSinks(dir).note(['memory'])
  await assert.rejects(
    checkStoreLoss(config(dir), [store(4096)], createLogger('silent')),
    /holds cursor 4096, but WAL positions 4096 to 131072 \(126976 bytes\)/,
  )
})

test('acceptStoreLoss: the start goes on with a warning naming what was lost', async (t) => {
  const dir = await dataDir(t, 131072)
  await new SweptSinks(dir).note(['memory'])
  const { logger, warnings } = recordingLogger()
  await checkStoreLoss(config(dir, true), [store(null)], logger)
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0].msg, 'DeliveryStoreLossAccepted')
  assert.deepEqual(
    { ...warnings[0].obj },
    {
      sink: 'memory',
      store: '(the memory store)',
      storedCursor: null,
      lostFrom: 0,
      lostTo: 131072,
      lostBytes: 131072,
    },
  )
})

test('no refusal: a new sink (no sweep record), a cursor at or past the oldest segment, a cursor file sink', async (t) => {
  const dir = await dataDir(t, 131072)
  const silent = createLogger('silent')
  // Never swept: a sink that starts at the oldest segment is a new sink.
  await checkStoreLoss(config(dir), [store(null)], silent)
  await new SweptSinks(dir).note(['memory'])
  await checkStoreLoss(config(dir), [store(131072)], silent)
  await checkStoreLoss(config(dir), [store(200000)], silent)
  // Its cursor is a file: losing that file loses no event (they were delivered).
  await checkStoreLoss(config(dir), [new MemorySink()], silent)
  // Swept for other sinks only: this one was added since.
  await new SweptSinks(dir).note(['duckdb'])
  await checkStoreLoss(config(dir), [store(null)], silent)
})

test('the sweep record is written once per change of the sinks', async (t) => {
  const dir = await dataDir(t, 0)
  const swept = new SweptSinks(dir)
  await swept.note(['memory', 'duckdb'])
  const first = await readFile(sweptSinksPath(dir), 'utf8')
  assert.deepEqual(JSON.parse(first).sinks, ['duckdb', 'memory'])
  await new Promise((resolve) => setTimeout(resolve, 5))
  await swept.note(['duckdb', 'memory'])
  assert.equal(await readFile(sweptSinksPath(dir), 'utf8'), first, 'not rewritten')
  await swept.note(['duckdb'])
  assert.deepEqual(JSON.parse(await readFile(sweptSinksPath(dir), 'utf8')).sinks, ['duckdb'])
})
