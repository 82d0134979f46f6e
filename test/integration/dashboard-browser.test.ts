/**
 * The dashboard in a real browser (Debian's chromium through playwright-core; nothing downloads a
 * browser) against a real `spillway serve` with DuckDB and an HTTP sink the test can break: the
 * page shows the events sent, draws them in its charts, shows the HTTP sink's breaker open once
 * the sink fails, and asks for an API key when the operations port needs one. A screenshot is
 * saved (SPILLWAY_DASHBOARD_SCREENSHOT, else the temp directory) and its path printed.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { type Browser, chromium, type Page } from 'playwright-core'
import { digestOf } from '../../src/http/auth.ts'
import { NdjsonReceiver } from '../helpers/ndjson-receiver.ts'
import { ROOT, type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

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
const KEY = 'spw_dashboard_browser_key'

let browser: Browser

/** The little of the page's DOM the checks read (this project's TypeScript has no DOM library). */
interface PageDom {
  readonly document: {
    querySelector(selector: string): {
      readonly textContent: string | null
      readonly width: number
      readonly height: number
      getContext(kind: '2d'): {
        getImageData(x: number, y: number, w: number, h: number): { readonly data: Uint8ClampedArray }
      } | null
    } | null
  }
}

before(async () => {
  const { stdout } = await run('bash', [join(ROOT, 'scripts/chromium.sh'), 'ensure'])
  const executablePath = stdout.trim().split('\n').at(-1)!
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS })
})

after(async () => {
  await browser?.close()
})

async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  env: Record<string, string>,
): Promise<ServerProcess> {
  const dataDir = await makeTempDir('spillway-dash-browser-')
  const server = await startServerProcess(dataDir, {
    SPILLWAY_DELIVERY_LINGER_MS: '20',
    SPILLWAY_SHUTDOWN_TIMEOUT_MS: '1000',
    ...env,
  })
  t.after(async () => {
    server.kill('SIGTERM')
    await server.exited()
    await removeTempDir(dataDir)
  })
  return server
}

async function postBatch(url: string, count: number, from: number): Promise<void> {
  const now = Math.floor(Date.now() / 1000) - 5
  const events = Array.from({ length: count }, (_, i) => ({
    event_id: `browser-${from + i}`,
    event_name: ['page_view', 'signup', '<img src=x onerror=alert(1)>'][(from + i) % 3],
    channel: ['web', 'mobile', 'api'][(from + i) % 3],
    user_id: `user-${(from + i) % 11}`,
    timestamp: now,
  }))
  const response = await fetch(`${url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(events),
  })
  assert.equal(response.status, 202, await response.text())
}

/** Pixels of `rgb` (± a little, for anti-aliasing) in the chart's canvas: the series is drawn. */
function pixelsOf(page: Page, chart: string, rgb: [number, number, number]): Promise<number> {
  return page.evaluate(
    ({ chart, rgb }) => {
      const { document } = globalThis as unknown as PageDom
      const canvas = document.querySelector(`#${chart} canvas`)
      if (!canvas || canvas.width === 0) return 0
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
      let n = 0
      for (let i = 0; i < data.length; i += 4) {
        if (
          data[i + 3] > 200 &&
          Math.abs(data[i] - rgb[0]) < 12 &&
          Math.abs(data[i + 1] - rgb[1]) < 12 &&
          Math.abs(data[i + 2] - rgb[2]) < 12
        )
          n++
      }
      return n
    },
    { chart, rgb },
  )
}

test('the page shows the events sent, charts them, and a stopped sink’s breaker open', async (t) => {
  const receiver = await NdjsonReceiver.start()
  t.after(() => receiver.close())
  const server = await serve(t, {
    SPILLWAY_SINKS: 'duckdb,http',
    SPILLWAY_HTTP_SINK_URL: receiver.url,
    SPILLWAY_BREAKER_FAILURES: '1',
    SPILLWAY_BREAKER_OPEN_MS: '60000',
    SPILLWAY_BREAKER_MAX_OPEN_MS: '60000',
  })
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('dialog', (dialog) => {
    problems.push(`a dialog opened: ${dialog.message()}`)
    void dialog.dismiss()
  })
  await page.goto(`${server.metricsUrl}/`)
  await page.waitForSelector('#live.ok', { timeout: 15_000 })

  const N = 60
  await postBatch(server.url, 30, 0)
  await postBatch(server.url, 30, 30)
  await page.waitForFunction(
    (n) =>
      (globalThis as unknown as PageDom).document.querySelector('#c-accepted-total')?.textContent ===
      String(n),
    N,
    { timeout: 20_000 },
  )
  await page.waitForFunction(
    () =>
      Number(
        (globalThis as unknown as PageDom).document
          .querySelector('[data-sink="http"] td:nth-child(4)')
          ?.textContent?.replace(/,/g, ''),
      ) === 60,
    undefined,
    { timeout: 20_000 },
  )
  // The accepted line (#3fbf7f) and the 202 line are drawn: the charts are not empty.
  // (A line needs two samples after the events arrived: polled, not read once.)
  for (const chart of ['chart-events', 'chart-requests']) {
    let drawn = 0
    for (let i = 0; i < 100 && drawn <= 20; i++) {
      drawn = await pixelsOf(page, chart, [0x3f, 0xbf, 0x7f])
      if (drawn <= 20) await page.waitForTimeout(100)
    }
    assert.ok(drawn > 20, `${chart}: the green series is drawn (${drawn} pixels)`)
  }

  // The sink stops answering: its breaker shows open on the page.
  receiver.respond = () => ({ status: 503, body: 'down for maintenance' })
  await postBatch(server.url, 1, N)
  await page.waitForSelector('[data-sink="http"][data-breaker="open"]', { timeout: 30_000 })
  const error = await page.textContent('tr[data-sink="http"] td.err')
  assert.match(error ?? '', /503/)

  // An event name is user data: the explorer shows it as text, never runs it as HTML.
  await page.selectOption('#window', '900')
  await page.waitForSelector('#top td:text-is("<img src=x onerror=alert(1)>")', { timeout: 20_000 })
  assert.equal(await page.locator('#top img').count(), 0)
  assert.deepEqual(problems, [])
  const shot =
    process.env['SPILLWAY_DASHBOARD_SCREENSHOT'] || join(tmpdir(), `spillway-dashboard-${Date.now()}.png`)
  await page.screenshot({ path: shot, fullPage: true })
  t.diagnostic(`screenshot: ${shot}`)
  await page.close()
})

test('off loopback with API keys, the page asks for a key and then shows the feed', async (t) => {
  const server = await serve(t, {
    METRICS_HOST: '0.0.0.0',
    SPILLWAY_API_KEYS: `ops:${digestOf(KEY).toString('hex')}`,
  })
  const page = await browser.newPage()
  await page.goto(`${server.metricsUrl}/`)
  await page.waitForSelector('#key-form:not([hidden])', { timeout: 15_000 })
  assert.equal(await page.isVisible('#main'), false)
  await page.fill('#key-input', 'not-the-key')
  await page.click('#key-form button')
  await page.waitForFunction(
    () =>
      /refused/.test(
        (globalThis as unknown as PageDom).document.querySelector('#key-message')?.textContent ?? '',
      ),
    undefined,
    {
      timeout: 15_000,
    },
  )
  await page.fill('#key-input', KEY)
  await page.click('#key-form button')
  await page.waitForSelector('#live.ok', { timeout: 15_000 })
  assert.equal(await page.isVisible('#key-form'), false)
  assert.equal(await page.evaluate(() => sessionStorage.getItem('spillway.apiKey')), KEY)
  await page.close()
})
