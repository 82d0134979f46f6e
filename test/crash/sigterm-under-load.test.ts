/**
 * G5 graceful shutdown (docs/ARCHITECTURE.md "Guarantees") under load, against the real server
 * process and the real DuckDB file:
 * concurrent clients send single events and NDJSON batches; SIGTERM arrives in the middle.
 * - the process exits 0 within the shutdown timeout;
 * - once it has begun to shut down (its `ServerShutdownRequested` log line), no request gets a
 *   202: they get 503 with a JSON error and Retry-After, or the connection is refused or closed;
 *   `/ready` is 503 (or refused) from then on;
 * - after a restart and a drain, every event that got a 202 — including requests in flight at the
 *   signal — is in DuckDB exactly once.
 * SIGTERM_TRIALS repeats the signal on a fresh load (default 3).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { eventBody } from '../helpers/events.ts'
import { destroyAgent, send } from '../helpers/http.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { assertExactlyOnce, storedEventCounts, walVerify } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const TRIALS = Number(process.env['SIGTERM_TRIALS'] ?? 3)
const CLIENTS = 16
const SHUTDOWN_TIMEOUT_MS = 10_000
/** Exit may take this much longer than the drain budget (closing DuckDB, the thread, the process). */
const EXIT_MARGIN_MS = 5_000

/** Errors a client may see once the server stops listening or closes its connections. */
const CLOSED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE'])

test(`SIGTERM under load exits 0 in time and loses no acked event (${TRIALS} trials)`, {
  timeout: 10 * 60_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-sigterm-')
  t.after(async () => {
    destroyAgent()
    await removeTempDir(dataDir)
  })
  const acked = new Set<string>()
  const sent = new Set<string>()
  const now = Math.floor(Date.now() / 1000)
  let seq = 0
  const event = (id: string) =>
    eventBody({
      event_id: id,
      event_name: 'sigterm_test',
      channel: 'api',
      user_id: `user_${seq % 313}`,
      timestamp: now - (seq++ % 3600),
      tags: ['load'],
      metadata: { seq, text: 'y'.repeat(seq % 300) },
    })

  for (let trial = 0; trial < TRIALS; trial++) {
    const server = await startServerProcess(dataDir, {
      SPILLWAY_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      SPILLWAY_DELIVERY_LINGER_MS: '50',
    })
    // The moment this test saw the server begin its shutdown: after it, no 202 may be given.
    let shutdownSeenAt = Number.POSITIVE_INFINITY
    server.proc.stdout!.on('data', (chunk: Buffer) => {
      if (shutdownSeenAt === Number.POSITIVE_INFINITY && chunk.includes('"ServerShutdownRequested"')) {
        shutdownSeenAt = performance.now()
      }
    })
    let signalled = false
    let stopped = false
    const counts = { accepted: 0, refused503: 0, closed: 0, acceptedInFlight: 0 }

    const client = async (c: number) => {
      for (let n = 0; !stopped; n++) {
        const batch = (n + c) % 4 === 0
        const ids = batch
          ? Array.from({ length: 1 + ((n * 7 + c) % 200) }, (_, i) => `t${trial}-c${c}-${n}-${i}`)
          : [`t${trial}-c${c}-${n}`]
        for (const id of ids) sent.add(id)
        const startedAt = performance.now()
        try {
          const answer = batch
            ? await send(`${server.url}/events/batch`, {
                method: 'POST',
                headers: { 'content-type': 'application/x-ndjson' },
                body: ids.map((id) => JSON.stringify(event(id))).join('\n'),
              })
            : await send(`${server.url}/events`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(event(ids[0])),
              })
          if (answer.status === 202) {
            assert.ok(
              startedAt < shutdownSeenAt,
              `a request sent ${(startedAt - shutdownSeenAt).toFixed(1)} ms after the shutdown began got a 202`,
            )
            if (batch) assert.equal(answer.body.accepted, ids.length, JSON.stringify(answer.body))
            for (const id of ids) acked.add(id)
            counts.accepted++
            if (signalled) counts.acceptedInFlight++
          } else {
            assert.equal(
              answer.status,
              503,
              `202 or 503 only, got ${answer.status}: ${JSON.stringify(answer.body)}`,
            )
            assert.ok(signalled, `a 503 before the signal: ${JSON.stringify(answer.body)}`)
            assert.equal(typeof answer.body.error, 'string')
            assert.ok(answer.headers['retry-after'], '503 with Retry-After')
            counts.refused503++
          }
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code ?? ''
          if (!signalled || !(CLOSED.has(code) || /socket hang up/.test((error as Error).message)))
            throw error
          counts.closed++
          if (code === 'ECONNREFUSED') return // the listener is gone
        }
      }
    }
    const clients = Array.from({ length: CLIENTS }, (_, c) => client(c))
    const readiness = (async () => {
      const seen: number[] = []
      while (!stopped) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        if (shutdownSeenAt === Number.POSITIVE_INFINITY) continue
        try {
          const ready = await send(`${server.url}/ready`)
          seen.push(ready.status)
        } catch {
          return seen
        }
      }
      return seen
    })()

    await new Promise((resolve) => setTimeout(resolve, 800 + Math.random() * 1200))
    const signalAt = performance.now()
    signalled = true
    server.kill('SIGTERM')
    const exit = await server.exited()
    const exitMs = performance.now() - signalAt
    stopped = true
    await Promise.all(clients)
    const readyAnswers = await readiness

    assert.deepEqual(exit, { code: 0, signal: null }, `exit 0 on SIGTERM; see ${server.logFile}`)
    assert.ok(
      exitMs < SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS,
      `exited ${exitMs.toFixed(0)} ms after SIGTERM (budget ${SHUTDOWN_TIMEOUT_MS} ms)`,
    )
    assert.ok(shutdownSeenAt < Number.POSITIVE_INFINITY, 'the server logged that it began to shut down')
    assert.ok(
      readyAnswers.every((status) => status === 503),
      `/ready is 503 while shutting down: ${readyAnswers.join(',')}`,
    )
    assert.ok(counts.accepted > 20, `the load was real (${counts.accepted} requests accepted)`)
    t.diagnostic(
      `trial ${trial}: exit 0 after ${exitMs.toFixed(0)} ms; ${counts.accepted} requests accepted ` +
        `(${counts.acceptedInFlight} answered after the signal was sent, before the shutdown began), ` +
        `${counts.refused503} × 503, ${counts.closed} closed/refused connections`,
    )
  }

  // Restart, drain everything into DuckDB, stop.
  const last = await startServerProcess(dataDir, { SPILLWAY_SHUTDOWN_TIMEOUT_MS: '120000' })
  last.kill('SIGTERM')
  assert.deepEqual(await last.exited(), { code: 0, signal: null }, `graceful exit; see ${last.logFile}`)

  const verify = await walVerify(dataDir)
  assert.equal(verify.ok, true, JSON.stringify(verify))

  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, acked, sent)
  t.diagnostic(`${sent.size} events sent, ${acked.size} acked, ${stored.size} stored`)
})
