/**
 * L1 on the HTTP path: a key is a duplicate only once its event was appended, so a failed append
 * (the client got a 503) never turns the client's retry into a silent loss.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { isSpillwayError, spillwayError } from '../../../src/errors.ts'
import { Ingestor } from '../../../src/ingest/ingestor.ts'
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

const as = (tenant: string, extra: Partial<IntakeContext> = {}): IntakeContext => ({
  receivedAt: Date.now(),
  tenant,
  ...extra,
})
const CONFLICT = 'event_id "order-42" was already used for a different event'

test('two tenants sending the same event_id are two events, both appended with their tenant', async () => {
  const { wal, ingestor: intake } = ingestor()
  const alice = await intake.acceptEvent(body('order-42'), as('alice'), true)
  const bob = await intake.acceptEvent({ ...body('order-42'), user_id: 'other' }, as('bob'), true)
  assert.deepEqual(
    [alice, bob],
    [
      { event_id: 'order-42', duplicate: false },
      { event_id: 'order-42', duplicate: false },
    ],
  )
  assert.deepEqual(
    wal.appended.map((line) => JSON.parse(line)).map((e) => [e.tenant, e.event_id]),
    [
      ['alice', 'order-42'],
      ['bob', 'order-42'],
    ],
  )
  assert.ok(wal.appended[0].startsWith('{"event_id":"order-42","tenant":"alice","event_name":'))
})

test('without a tenant (keys off) the WAL line is as before: no tenant field', async () => {
  const { wal, ingestor: intake } = ingestor()
  await intake.acceptEvent(body('a'), { receivedAt: Date.now(), tenant: '' }, true)
  assert.ok(wal.appended[0].startsWith('{"event_id":"a","event_name":'), wal.appended[0])
  assert.ok(!wal.appended[0].includes('tenant'))
})

test('a reused event_id with other content in one tenant is a 409; an exact retry is a duplicate', async () => {
  const { wal, ingestor: intake } = ingestor()
  await intake.acceptEvent({ ...body('order-42'), sent_at: now }, as('alice'), true)
  // Re-sent later with another sent_at: the corrected timestamp differs, the content does not.
  const retry = await intake.acceptEvent({ ...body('order-42'), sent_at: now - 30 }, as('alice'), true)
  assert.deepEqual(retry, { event_id: 'order-42', duplicate: true })
  for (const other of [{ user_id: 'someone else' }, { timestamp: now - 1 }, { metadata: { a: 1 } }]) {
    await assert.rejects(
      intake.acceptEvent({ ...body('order-42'), ...other }, as('alice'), true),
      (error) => {
        assert.ok(isSpillwayError(error, 'SPW_ERR_INTAKE_CONFLICT'))
        assert.equal(error.statusCode, 409)
        assert.equal(error.message, CONFLICT)
        return true
      },
    )
  }
  assert.equal(wal.appended.length, 1)
})

test('in a batch, a reused id is rejected by index (L1 or earlier in the batch), not appended nor dead-lettered', async () => {
  const wal = fakeWal()
  const batch = Buffer.from(
    [
      body('order-42'), // exact copy of the accepted one: duplicate
      { ...body('order-42'), user_id: 'x' }, // conflict with L1
      { bad: 1 }, // invalid
      body('n-1'),
      { ...body('n-1'), user_id: 'y' }, // conflict with index 3
      body('n-1'), // copy of index 3: duplicate
    ]
      .map((e) => JSON.stringify(e))
      .join('\n'),
  )
  const deadLettered: unknown[] = []
  const deadLetters = { append: async (entries: unknown[]) => void deadLettered.push(...entries) }
  const config = loadConfig({ env: {}, overrides: { dedupCacheEntries: 100 } })
  const intake = new Ingestor(wal as unknown as WalWriter, config, deadLetters as never)
  await intake.acceptEvent(body('order-42'), as('alice'), true)
  const outcome = await intake.acceptBatch(batch, true, as('alice'), true)
  assert.equal(outcome.accepted, 1)
  assert.equal(outcome.duplicates, 2)
  assert.deepEqual(
    outcome.rejected.map((r) => [r.index, r.error.startsWith('event_id') ? r.error : 'invalid']),
    [
      [1, CONFLICT],
      [2, 'invalid'],
      [4, 'event_id "n-1" was already used for a different event'],
    ],
  )
  assert.equal(deadLettered.length, 1, 'only the invalid event is dead-lettered')
  // The other tenant's batch of the same ids is all new.
  const bobs = await intake.acceptBatch(batch, true, as('bob'), true)
  assert.deepEqual([bobs.accepted, bobs.duplicates], [2, 1])
  assert.deepEqual(
    bobs.rejected.map((r) => r.index),
    [1, 2, 4],
  )
})

test('an Idempotency-Key reused for another batch conflicts per index', async () => {
  const { ingestor: intake } = ingestor()
  const first = Buffer.from(JSON.stringify([{ ...body('x'), event_id: null }]))
  const second = Buffer.from(JSON.stringify([{ ...body('x'), event_id: null, user_id: 'z' }]))
  const ctx1 = as('alice', { idempotencyKey: 'req-1' })
  assert.equal((await intake.acceptBatch(first, false, ctx1, true)).accepted, 1)
  assert.equal((await intake.acceptBatch(first, false, ctx1, true)).duplicates, 1)
  const reused = await intake.acceptBatch(second, false, ctx1, true)
  assert.deepEqual(reused.rejected, [
    { index: 0, error: 'event_id "req-1:0" was already used for a different event' },
  ])
})
