/**
 * The client in a real browser (Debian chromium through playwright-core) against a real
 * `spillway serve`: the package is compiled with its own tsconfig.build.json (what `npm pack`
 * ships) and loaded by a page as ES modules. The page is served by a small front server that
 * also passes `/events/*` through to Spillway, as a site's reverse proxy would — same origin, so
 * no CORS is involved.
 *
 * - Events tracked on a page that is then closed reach DuckDB: sent by sendBeacon without an API
 *   key, by fetch with keepalive and the Authorization header with one.
 * - A page's regular batches: gzip through CompressionStream, flush() awaited in the page.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http'
import { join, normalize } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { send } from '../helpers/http.ts'
import { ROOT, type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { assertExactlyOnce, storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

const run = promisify(execFile)
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
const API_KEY = 'spw_browser_test_key'

/**
 * The page: the client's modules, and spies that note in localStorage (which outlives the page)
 * how each request left — sendBeacon, or fetch with or without keepalive.
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">
const note = (entry) => {
  const log = JSON.parse(localStorage.getItem('sent') ?? '[]')
  log.push(entry)
  localStorage.setItem('sent', JSON.stringify(log))
}
const beacon = navigator.sendBeacon.bind(navigator)
navigator.sendBeacon = (url, body) => {
  const ok = beacon(url, body)
  note({ via: 'beacon', ok, bytes: body.size })
  return ok
}
const fetched = window.fetch.bind(window)
window.fetch = (url, init) => {
  note({ via: 'fetch', keepalive: init?.keepalive === true, gzip: init?.headers?.['content-encoding'] === 'gzip' })
  return fetched(url, init)
}
window.spillway = await import('/client/index.js')
</script>`

interface Forwarded {
  readonly url: string
  readonly headers: IncomingHttpHeaders
}

let browser: Browser
/** One context for every page, so they share localStorage. */
let context: BrowserContext
let buildDir: string
let front: Server
let frontUrl: string
/** Where the front server sends /events/*: the Spillway of the test that runs. */
let upstream = ''
const forwarded: Forwarded[] = []

before(async () => {
  const { stdout } = await run('bash', [join(ROOT, 'scripts/chromium.sh'), 'ensure'])
  const executablePath = stdout.trim().split('\n').at(-1)!
  buildDir = await makeTempDir('spillway-client-build-')
  await run(process.execPath, [
    join(ROOT, 'node_modules/typescript/bin/tsc'),
    '-p',
    join(ROOT, 'packages/client/tsconfig.build.json'),
    '--outDir',
    buildDir,
  ])
  front = createServer((req, res) => {
    const url = req.url ?? '/'
    if (req.method === 'GET' && url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE)
      return
    }
    if (req.method === 'GET' && url.startsWith('/client/')) {
      const file = normalize(join(buildDir, url.slice('/client/'.length)))
      if (!file.startsWith(buildDir) || !file.endsWith('.js')) {
        res.writeHead(404).end()
        return
      }
      readFile(file).then(
        (js) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(js),
        () => res.writeHead(404).end(),
      )
      return
    }
    if (!url.startsWith('/events/')) {
      res.writeHead(404).end()
      return
    }
    forwarded.push({ url, headers: req.headers })
    const proxied = request(`${upstream}${url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    proxied.on('error', () => res.writeHead(502).end())
    req.pipe(proxied)
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  frontUrl = `http://127.0.0.1:${(front.address() as { port: number }).port}`
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS })
  context = await browser.newContext()
})

after(async () => {
  await browser?.close()
  front?.closeAllConnections()
  front?.close()
  if (buildDir) await removeTempDir(buildDir)
})

async function openPage(): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${frontUrl}/`)
  await page.waitForFunction(() => 'spillway' in globalThis)
  return page
}

/** Tracks `count` events named `name` on the page; returns their event_ids. */
function trackOnPage(
  page: Page,
  name: string,
  count: number,
  options: Record<string, unknown>,
): Promise<string[]> {
  return page.evaluate(
    async ({ name, count, options }) => {
      const page = globalThis as unknown as {
        spillway: typeof import('../../packages/client/src/index.ts')
        location: { origin: string }
        client: unknown
      }
      const client = new page.spillway.SpillwayClient({ url: page.location.origin, ...options })
      page.client = client
      const ids: string[] = []
      for (let i = 0; i < count; i++) {
        const tracked = await client.track({
          event_name: name,
          user_id: `visitor-${i % 17}`,
          channel: 'web',
          tags: ['browser'],
          metadata: { i, path: '/pricing' },
        })
        ids.push(tracked.event_id)
      }
      return ids
    },
    { name, count, options },
  )
}

/** What the page's spies noted, read from a new page of the same origin. */
async function sentLog(): Promise<{ via: string; ok?: boolean; keepalive?: boolean; gzip?: boolean }[]> {
  const page = await openPage()
  try {
    return await page.evaluate(() => {
      const log = JSON.parse(localStorage.getItem('sent') ?? '[]')
      localStorage.removeItem('sent')
      return log
    })
  } finally {
    await page.close()
  }
}

async function startSpillway(t: { after(fn: () => unknown): void }, env: Record<string, string> = {}) {
  const dataDir = await makeTempDir('spillway-client-browser-')
  const server = await startServerProcess(dataDir, env, ['--workers', '1'])
  t.after(async () => {
    server.kill('SIGKILL')
    await removeTempDir(dataDir)
  })
  upstream = server.url
  return { server, dataDir }
}

async function waitForTotal(
  server: ServerProcess,
  name: string,
  total: number,
  headers: Record<string, string> = {},
) {
  await eventually(
    async () => {
      const answer = await send(`${server.url}/metrics?event_name=${name}`, { headers })
      return answer.status === 200 && answer.body.total_events === total
    },
    `${total} ${name} events queryable`,
    30_000,
  )
}

/** Stops the server cleanly (the WAL drains into DuckDB) and checks every id is there once. */
async function assertStored(server: ServerProcess, dataDir: string, ids: readonly string[]) {
  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, new Set(ids), new Set(ids))
  assert.equal(stored.size, ids.length)
}

describe('the client in chromium', { timeout: 180_000 }, () => {
  test('events tracked on a page are stored after the page is closed: sendBeacon without an API key', async (t) => {
    const { server, dataDir } = await startSpillway(t)
    const page = await openPage()
    // Nothing leaves before the page goes: no timer, batches larger than what is tracked.
    const ids = await trackOnPage(page, 'page_closed', 150, {
      flushIntervalMs: 600_000,
      batchEvents: 1000,
      batchBytes: 1 << 20,
    })
    assert.equal(forwarded.length, 0)
    await page.close()
    await waitForTotal(server, 'page_closed', ids.length)
    const log = await sentLog()
    assert.ok(log.length > 0 && log.every((e) => e.via === 'beacon' && e.ok), JSON.stringify(log))
    assert.equal(forwarded.at(-1)?.headers['authorization'], undefined)
    await assertStored(server, dataDir, ids)
  })

  test('with an API key the closing page sends by fetch with keepalive and the Bearer token', async (t) => {
    const digest = createHash('sha256').update(API_KEY).digest('hex')
    const { server, dataDir } = await startSpillway(t, { SPILLWAY_API_KEYS: `browser:${digest}` })
    const auth = { authorization: `Bearer ${API_KEY}` }
    const page = await openPage()
    const closed = await trackOnPage(page, 'page_closed_keyed', 150, {
      apiKey: API_KEY,
      flushIntervalMs: 600_000,
      batchEvents: 1000,
      batchBytes: 1 << 20,
    })
    forwarded.length = 0
    await page.close()
    await waitForTotal(server, 'page_closed_keyed', closed.length, auth)
    const log = await sentLog()
    assert.ok(log.length > 0 && log.every((e) => e.via === 'fetch' && e.keepalive), JSON.stringify(log))
    assert.ok(
      forwarded.length > 0 && forwarded.every((f) => f.headers['authorization'] === auth.authorization),
    )

    // Regular batches from a page that stays: gzip'd by CompressionStream, flush() awaited there.
    const open = await openPage()
    const batched = await trackOnPage(open, 'page_batches', 2000, { apiKey: API_KEY })
    const stats = await open.evaluate(async () => {
      const client = (globalThis as unknown as { client: { flush(): Promise<void>; stats: object } }).client
      await client.flush()
      return client.stats as { sent: number; dropped: number; rejected: number }
    })
    assert.equal(stats.sent, 2000)
    assert.equal(stats.dropped + stats.rejected, 0)
    const batches = await sentLog()
    assert.ok(batches.length >= 10, `${batches.length} requests`)
    assert.ok(
      batches.some((e) => e.gzip),
      JSON.stringify(batches),
    )
    await open.close()
    await waitForTotal(server, 'page_batches', 2000, auth)
    await assertStored(server, dataDir, [...closed, ...batched])
  })
})
