import assert from 'node:assert/strict'
import { test } from 'node:test'
import { publicReadiness } from '../../../src/http/public-errors.ts'

test('a WAL write failure reaches /ready clients by name; other details stay generic', () => {
  const error = 'WAL writes failing: no space left on device (ENOSPC)'
  const seen = publicReadiness({
    ok: false,
    error,
    details: {
      wal: { ok: false, error, public: true, failingSince: '2026-12-04T20:31:32.668Z' },
      sinks: { duckdb: { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:9000' } },
    },
  })
  assert.equal(seen.error, `${error}; sink duckdb is not answering`)
  const details = seen.details as { wal: { error: string }; sinks: { duckdb: { error: string } } }
  assert.equal(details.wal.error, error)
  assert.equal(details.sinks.duckdb.error, 'sink duckdb is not answering')
  assert.ok(!JSON.stringify(seen).includes('127.0.0.1'))
})
