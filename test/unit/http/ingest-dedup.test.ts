/**
 * L1 on the HTTP path: a key is a duplicate only once its event was appended, so a failed append
 * (the client got a 503) never turns the client's retry into a silent loss.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { spillwayError } from '../../../src/errors.ts'
import { Ingestor } from '../../../src/http/ingest.ts'
import type { IntakeContext } from '../../../src/intake/types.ts'
import type { WalWriter } from '../../../src/wal/writer.ts'

const now = Math.floor(Date.now() / 1000)
const ctx = (): IntakeContext => ({ receivedAt: Date.now() })
const body = (id: string) => ({ event_id: id, event_name: 'v', channel: 'web', user_id: 'u', timestamp: now })

function fakeWal() {
  const appended: string[] = []
  let failures = 0
  const wal = {
    failNext(n: number) {
      failures = n
    },
    appended,
    async append(payload: Buffer) {
      if (failures > 0) {
        failures--
        throw spillwayError('SPW_ERR_WAL_IO', 'disk full')
      }
      appended.push(...payload.toString().trim().split('\n'))
      return 0
    },
  }
  return wal
}

function ingestor(entries = 100) {
  const wal = fakeWal()
  const config = loadConfig({ env: {}, overrides: { dedupCacheEntries: entries } })
  return { wal, ingestor: new Ingestor(wal as unknown as WalWriter, config) }
}

test('a repeated event is answered as a duplicate and not appended again', async () => {
  const { wal, ingestor: intake } = ingestor()
  assert.deepEqual(await intake.acceptEvent(body('a'), ctx(), true), { event_id: 'a', duplicate: false })
  assert.deepEqual(await intake.acceptEvent(body('a'), ctx(), true), { event_id: 'a', duplicate: true })
  assert.equal(wal.appended.length, 1)
})

test('a failed append does not mark the key: the retry is accepted and appended', async () => {
  const { wal, ingestor: intake } = ingestor()
  wal.failNext(1)
  await assert.rejects(intake.acceptEvent(body('a'), ctx(), true), /disk full/)
  assert.deepEqual(await intake.acceptEvent(body('a'), ctx(), true), { event_id: 'a', duplicate: false })
  wal.failNext(1)
  const batch = Buffer.from(JSON.stringify([body('b'), body('c')]))
  await assert.rejects(intake.acceptBatch(batch, false, ctx(), true), /disk full/)
  const outcome = await intake.acceptBatch(batch, false, ctx(), true)
  assert.equal(outcome.accepted, 2)
  assert.equal(outcome.duplicates, 0)
  assert.equal(wal.appended.length, 3)
})

test('a batch counts repeats of known keys and of keys earlier in the batch', async () => {
  const { wal, ingestor: intake } = ingestor()
  await intake.acceptEvent(body('a'), ctx(), true)
  const batch = Buffer.from(JSON.stringify([body('a'), body('b'), body('b'), body('c'), { bad: 1 }]))
  const outcome = await intake.acceptBatch(batch, false, ctx(), true)
  assert.equal(outcome.accepted, 2)
  assert.equal(outcome.duplicates, 2)
  assert.equal(outcome.rejected.length, 1)
  assert.deepEqual(
    wal.appended.map((line) => JSON.parse(line).event_id),
    ['a', 'b', 'c'],
  )
})

test('L1 holds at most dedupCacheEntries keys', async () => {
  const { ingestor: intake } = ingestor(10)
  for (let i = 0; i < 100; i++) await intake.acceptEvent(body(`k${i}`), ctx(), true)
  assert.equal(intake.l1Size, 10)
  assert.equal((await intake.acceptEvent(body('k0'), ctx(), true)).duplicate, false, 'k0 was evicted')
  assert.equal((await intake.acceptEvent(body('k99'), ctx(), true)).duplicate, true)
})
