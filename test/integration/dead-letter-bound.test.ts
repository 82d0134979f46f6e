/**
 * The dead-letter store against a real `spillway serve` process: its bounds (a batch whose
 * invalid events do not fit is refused whole, nothing silently lost, the size stays bounded),
 * `dlq purge` while the server appends, and `dlq replay` against a server that requires API keys.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { promisify } from 'node:util'
import { newApiKey } from '../../src/http/auth.ts'
import { DeadLetterStore, deadLetterUsage, scanDeadLetters } from '../../src/shared/dead-letter.ts'
import { NODE, ROOT, type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const now = Math.floor(Date.now() / 1000)
const event = (name: string, n: number, over: Record<string, unknown> = {}) => ({
  event_id: `${name}-${n}`,
  event_name: name,
  channel: 'web',
  user_id: `u${n}`,
  timestamp: now - 30,
  ...over,
})
/** About 1 KiB each once stored: `channel` is wrong, the padding makes it weigh. */
const invalid = (name: string, n: number) =>
  event(name, n, { channel: 'fax', metadata: { pad: 'x'.repeat(900) } })

async function scope(t: TestContext) {
  const dataDir = await makeTempDir('spillway-dlq-bound-')
  const servers: ServerProcess[] = []
  t.after(async () => {
    for (const s of servers) {
      s.kill('SIGTERM')
      await s.exited()
    }
    await removeTempDir(dataDir)
  })
  return {
    dataDir,
    dir: join(dataDir, 'deadletter'),
    start: async (env: Record<string, string> = {}) => {
      const s = await startServerProcess(dataDir, { SPILLWAY_DELIVERY_LINGER_MS: '10', ...env })
      servers.push(s)
      return s
    },
  }
}

async function post(url: string, events: unknown[], headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...headers },
    body: events.map((e) => JSON.stringify(e)).join('\n'),
  })
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
    body: (await response.json()) as any,
  }
}

/** Value of one unlabelled series on the operations port. */
async function gauge(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  assert.ok(line, `${name} is exported`)
  return Number(line.split(' ')[1])
}

async function stored(url: string, eventName: string, expected: number, key?: string): Promise<number> {
  let total = -1
  for (let i = 0; i < 150 && total !== expected; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100))
    const answer = await fetch(`${url}/metrics?event_name=${eventName}`, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
    })
    total = ((await answer.json()) as { total_events: number }).total_events
  }
  return total
}

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(NODE, [join(ROOT, 'src/cli/main.ts'), ...args], {
      env: { ...process.env, SPILLWAY_DATA_DIR: '', SPILLWAY_API_KEY: '', ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('a batch whose invalid events would pass maxDeadLetterBytes is refused whole with 503; a purge while the server runs frees room', async (t) => {
  const { dataDir, dir, start } = await scope(t)
  const bound = 64 * 1024
  const server = await start({ SPILLWAY_MAX_DEAD_LETTER_BYTES: String(bound) })

  // 40 invalid events (~40 KiB) fit; the next 40 would not.
  const first = await post(
    server.url,
    Array.from({ length: 40 }, (_, n) => invalid('bad', n)),
  )
  assert.equal(first.status, 400)
  assert.equal(first.body.rejected.length, 40)
  const kept = await deadLetterUsage(dir)
  assert.equal(kept.entries, 40)

  for (let attempt = 0; attempt < 5; attempt++) {
    const mixed = await post(server.url, [
      event('mixed', attempt),
      ...Array.from({ length: 40 }, (_, n) => invalid('bad', 100 * (attempt + 1) + n)),
    ])
    assert.equal(mixed.status, 503, JSON.stringify(mixed.body))
    assert.equal(mixed.retryAfter, '60')
    assert.match(
      mixed.body.error,
      /dead-letter store is full: keeping 40 rejected events .*maxDeadLetterBytes/,
    )
    assert.match(mixed.body.error, /nothing of the request was accepted/)
  }
  assert.deepEqual(await deadLetterUsage(dir), kept, 'the refused batches left nothing in the store')
  assert.ok(kept.bytes <= bound)
  assert.equal(await gauge(server.metricsUrl, 'deadletter_bytes'), kept.bytes)
  assert.equal(await gauge(server.metricsUrl, 'deadletter_entries'), 40)
  assert.equal(await gauge(server.metricsUrl, 'deadletter_limit_bytes'), bound)

  // A batch with nothing to dead-letter still goes through.
  const clean = await post(server.url, [event('clean', 1), event('clean', 2)])
  assert.equal(clean.status, 202)
  assert.equal(await stored(server.url, 'clean', 2), 2)

  // The operator frees room while the server runs; the refused batch, sent again, is taken whole.
  const purge = await cli([
    'dlq',
    'purge',
    '--data-dir',
    dataDir,
    '--reason',
    'channel must be one of',
    '--json',
  ])
  assert.equal(purge.code, 0, purge.stderr)
  assert.equal(JSON.parse(purge.stdout).entries, 40)
  assert.equal(await gauge(server.metricsUrl, 'deadletter_entries'), 0)
  const again = await post(server.url, [
    event('mixed', 0),
    ...Array.from({ length: 40 }, (_, n) => invalid('bad', 100 + n)),
  ])
  assert.equal(again.status, 202, JSON.stringify(again.body))
  assert.equal(again.body.accepted, 1)
  assert.equal(again.body.rejected.length, 40)
  assert.equal(await stored(server.url, 'mixed', 1), 1, 'only the retry that was answered 202 is stored')
  const entries = await scanDeadLetters(dir)
  assert.deepEqual(
    entries.map((s) => (s.entry.event as { event_id: string }).event_id),
    Array.from({ length: 40 }, (_, n) => `bad-${100 + n}`),
    'the invalid events of the accepted request are kept, once',
  )
})

test('dlq replay sends --api-key or SPILLWAY_API_KEY as a Bearer token to a keyed server', async (t) => {
  const { dataDir, dir, start } = await scope(t)
  const { key, entry } = newApiKey('replay')
  // Events a sink refused earlier (valid as input): the fix is in, replay them.
  const refusedBySink = async (numbers: number[]) => {
    const store = new DeadLetterStore(dir, { source: 'delivery' })
    await store.append(
      numbers.map((n) => ({
        at: Date.now(),
        sink: 'duckdb',
        reason: 'Conversion Error: bad value',
        index: 0,
        event: { ...event('keyed', n), received_at: Date.now() },
      })),
    )
    await store.close()
  }
  await refusedBySink([1, 2])
  const server = await start({ SPILLWAY_API_KEYS: entry })
  const args = ['dlq', 'replay', '--data-dir', dataDir, '--url', server.url, '--chunk-events', '1']

  const refused = await cli(args)
  assert.equal(refused.code, 1)
  assert.match(
    refused.stdout,
    /stopped early: the server answered HTTP 401: .* \(the server requires an API key: pass --api-key or set SPILLWAY_API_KEY\)/,
  )
  const wrong = await cli([...args, '--api-key', 'spw_not-a-key'])
  assert.equal(wrong.code, 1)
  assert.match(wrong.stdout, /HTTP 401: .*\(the server does not accept this API key\)/)

  const byFlag = await cli([...args, '--api-key', key])
  assert.equal(byFlag.code, 0, byFlag.stdout)
  assert.match(byFlag.stdout, /^replayed 2 of 2 pending entries .* in 2 requests: 2 accepted/)

  // One more refused event, replayed with the key from the environment.
  await refusedBySink([3])
  const byEnv = await cli(args, { SPILLWAY_API_KEY: key })
  assert.equal(byEnv.code, 0, byEnv.stdout)
  assert.match(byEnv.stdout, /^replayed 1 of 1 pending entries .*: 1 accepted/)
  assert.equal(await stored(server.url, 'keyed', 3, key), 3)
})
