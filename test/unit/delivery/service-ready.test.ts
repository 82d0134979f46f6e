/**
 * DeliveryService.ready(): an open circuit breaker makes its sink not ready and shows up, with the
 * retries and the backlog, in the report; a healthy sink's entry stays `{ ok: true }`.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { DeliveryService } from '../../../src/delivery/service.ts'
import { encodeEvents } from '../../../src/intake/serialize.ts'
import { MemorySink } from '../../../src/sinks/memory/sink.ts'
import { WalSharedState } from '../../../src/wal/shared-state.ts'
import { WalWriter } from '../../../src/wal/writer.ts'
import { numberedEvents } from '../../helpers/events.ts'
import { eventually, silent, tempDir } from './helpers.ts'

test('ready() reports a sink with an open breaker as not ready, with breaker, retries and backlog', async (t) => {
  const dataDir = await tempDir(t, 'spillway-service-')
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      sinks: ['memory'],
      deliveryLingerMs: 0,
      breakerFailures: 2,
      breakerOpenMs: 60_000,
      deliveryTimeoutMs: 1000,
    },
  })
  const state = new WalSharedState()
  const sink = new MemorySink({ name: 'memory' })
  sink.failNext({ kind: 'retry', error: new Error('receiver down') }, 100)
  const service = await DeliveryService.start({
    config,
    state,
    logger: silent,
    maxRecordBytes: 1 << 20,
    sinks: [sink],
    backoff: { initialMs: 1, maxMs: 2 },
  })
  const wal = new WalWriter(
    {
      dir: join(dataDir, 'wal'),
      segmentBytes: config.walSegmentBytes,
      groupCommitBytes: config.walGroupCommitBytes,
      groupCommitDelayMs: 0,
      maxRecordBytes: 1 << 20,
    },
    state,
    silent,
  )
  await wal.open({ minHead: 0 })
  t.after(async () => {
    await service.stop({ drain: false })
    await wal.close()
  })

  assert.deepEqual(await service.ready(), { ok: true, sinks: { memory: { ok: true } } })
  await wal.append(encodeEvents(numberedEvents(0, 3)))
  await eventually(() => service.stats()[0].breaker === 'open', 'breaker open')

  const report = await service.ready()
  assert.equal(report.ok, false)
  const memory = report.sinks['memory']
  assert.equal(memory.ok, false)
  assert.equal(memory.breaker, 'open')
  assert.equal(memory.breakerOpens, 1)
  assert.equal(memory.retries, 2)
  assert.ok((memory.backlogBytes ?? 0) > 0)
  assert.match(memory.error ?? '', /circuit breaker open .*receiver down/)
})
