/**
 * The load-and-SIGKILL trials the crash tests share, whatever the store: concurrent clients send
 * single events and NDJSON batches (some with `?wait=false`) to the real server process, which is
 * killed with SIGKILL at a random moment and started again, TRIALS times; then a last clean run
 * drains the WAL and exits 0 on SIGTERM, and `spillway wal verify` must be clean. The caller
 * checks its store against the ids that were acknowledged (`acked`) and sent (`sent`).
 */
import assert from 'node:assert/strict'
import { send } from './http.ts'
import { startServerProcess } from './server-process.ts'
import { walVerify } from './store-check.ts'

export interface CrashTrialOptions {
  readonly dataDir: string
  readonly trials: number
  readonly clients: number
  /** Environment of every server start (sinks and their options). */
  readonly env?: Record<string, string>
  readonly eventName?: string
  /** Runs before each trial's server starts (trial counts from 0). */
  readonly beforeTrial?: (trial: number) => Promise<void> | void
}

export interface CrashTrialResult {
  /** Every id answered 202. */
  readonly acked: ReadonlySet<string>
  /** Every id sent, answered or not. */
  readonly sent: ReadonlySet<string>
}

export async function runCrashTrials(options: CrashTrialOptions): Promise<CrashTrialResult> {
  const { dataDir, trials, clients } = options
  const acked = new Set<string>()
  const sent = new Set<string>()
  let seq = 0
  const now = Math.floor(Date.now() / 1000)
  const event = (id: string) => ({
    event_id: id,
    event_name: options.eventName ?? 'crash_test',
    channel: 'web',
    user_id: `user_${seq % 997}`,
    timestamp: now - (seq % 3600),
    tags: ['a', 'b'],
    metadata: { seq: seq++, text: 'x'.repeat(seq % 200) },
  })

  for (let trial = 0; trial < trials; trial++) {
    await options.beforeTrial?.(trial)
    const server = await startServerProcess(dataDir, {
      ...options.env,
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
            // A 503 (shedding on a busy machine) is a refusal the client retries: not acked.
          } else if (answer.status !== 503) {
            assert.fail(`unexpected ${answer.status}: ${JSON.stringify(answer.body)}`)
          }
        } catch (error) {
          if (!killed) throw error
        }
      }
    }
    const running = Array.from({ length: clients }, (_, c) => client(c))
    await new Promise((resolve) => setTimeout(resolve, 150 + Math.random() * 1200))
    killed = true
    server.kill('SIGKILL')
    const exit = await server.exited()
    assert.equal(exit.signal, 'SIGKILL')
    await Promise.allSettled(running)
  }

  // A last clean run drains the WAL into the store and exits 0 on SIGTERM.
  const last = await startServerProcess(dataDir, { ...options.env })
  last.kill('SIGTERM')
  assert.deepEqual(await last.exited(), { code: 0, signal: null }, `graceful exit; see ${last.logFile}`)

  const verify = await walVerify(dataDir)
  assert.equal(verify.ok, true, JSON.stringify(verify))
  return { acked, sent }
}
