/**
 * G1 + G2 + exactly-once under SIGKILL, against the real server process and the real DuckDB file:
 * clients send events concurrently (single and NDJSON batches), the server is killed with SIGKILL at
 * a random moment, restarted, and killed again. At the end every event that got a 202 is in DuckDB
 * exactly once, no event is there twice, and `spillway wal verify` is clean.
 * CRASH_TRIALS sets the number of kills (default 20).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { destroyAgent, send } from '../helpers/http.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { assertExactlyOnce, storedEventCounts, walVerify } from '../helpers/store-check.ts'

const TRIALS = Number(process.env['CRASH_TRIALS'] ?? 20)
const CLIENTS = 24

test(`every 202-acked event is in DuckDB exactly once across ${TRIALS} SIGKILLs`, {
  timeout: 15 * 60_000,
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-crash-'))
  t.after(async () => {
    destroyAgent()
    if (!process.env['KEEP_DATA']) await rm(dataDir, { recursive: true, force: true })
  })
  const acked = new Set<string>()
  const sent = new Set<string>()
  let seq = 0
  const now = Math.floor(Date.now() / 1000)
  const event = (id: string) => ({
    event_id: id,
    event_name: 'crash_test',
    channel: 'web',
    user_id: `user_${seq % 997}`,
    timestamp: now - (seq % 3600),
    tags: ['a', 'b'],
    metadata: { seq: seq++, text: 'x'.repeat(seq % 200) },
  })

  for (let trial = 0; trial < TRIALS; trial++) {
    const server = await startServerProcess(dataDir, {
      SPILLWAY_DELIVERY_LINGER_MS: String(trial % 3 === 0 ? 0 : 50),
    })
    let killed = false
    const client = async (c: number) => {
      let n = 0
      while (!killed) {
        const batch = (n + c) % 5 === 0
        const ids = batch
          ? Array.from({ length: 1 + (n % 40) }, (_, i) => `t${trial}-c${c}-${n}-${i}`)
          : [`t${trial}-c${c}-${n}`]
        n++
        for (const id of ids) sent.add(id)
        const wait = n % 7 === 0 ? '?wait=false' : ''
        try {
          const answer = batch
            ? await send(`${server.url}/events/batch${wait}`, {
                method: 'POST',
                headers: { 'content-type': 'application/x-ndjson' },
                body: ids.map((id) => JSON.stringify(event(id))).join('\n'),
              })
            : await send(`${server.url}/events${wait}`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(event(ids[0])),
              })
          if (answer.status === 202) {
            if (batch) assert.equal(answer.body.accepted, ids.length, JSON.stringify(answer.body))
            for (const id of ids) acked.add(id)
          } else {
            assert.fail(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`)
          }
        } catch (error) {
          if (!killed) throw error
        }
      }
    }
    const clients = Array.from({ length: CLIENTS }, (_, c) => client(c))
    await new Promise((resolve) => setTimeout(resolve, 150 + Math.random() * 1200))
    killed = true
    server.kill('SIGKILL')
    const exit = await server.exited()
    assert.equal(exit.signal, 'SIGKILL')
    await Promise.allSettled(clients)
  }

  // A last clean run drains the WAL into DuckDB and exits 0 on SIGTERM.
  const last = await startServerProcess(dataDir)
  last.kill('SIGTERM')
  assert.deepEqual(await last.exited(), { code: 0, signal: null }, `graceful exit; see ${last.logFile}`)

  const verify = await walVerify(dataDir)
  assert.equal(verify.ok, true, JSON.stringify(verify))

  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, acked, sent)
  t.diagnostic(`${TRIALS} kills, ${sent.size} sent, ${acked.size} acked, ${stored.size} stored`)
  assert.ok(acked.size > TRIALS * 50, `the load was real (${acked.size} acked)`)
})
