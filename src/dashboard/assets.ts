/**
 * The dashboard's files, served from the package itself (no CDN, no build step): the page, its
 * script and style from this folder, uPlot from its npm package, resolved like an import.
 * Every answer has an ETag and `Cache-Control: no-cache`, so a browser revalidates (a 304) and an
 * upgraded server's page is never stale.
 */
import { readFile, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const here = (name: string) => fileURLToPath(new URL(name, import.meta.url))

const ASSETS: ReadonlyMap<string, { readonly file: string; readonly type: string }> = new Map([
  ['/', { file: here('./index.html'), type: 'text/html; charset=utf-8' }],
  ['/dashboard.js', { file: here('./dashboard.js'), type: 'text/javascript; charset=utf-8' }],
  ['/dashboard.css', { file: here('./dashboard.css'), type: 'text/css; charset=utf-8' }],
  [
    '/vendor/uplot.js',
    { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  ],
  [
    '/vendor/uplot.css',
    { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
  ],
])

export function isAsset(path: string): boolean {
  return ASSETS.has(path)
}

export async function serveAsset(
  path: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const asset = ASSETS.get(path)!
  const info = await stat(asset.file)
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`
  const headers = {
    'content-type': asset.type,
    etag,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    // The page loads only its own files and talks only to its own origin.
    'content-security-policy':
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  }
  if (request.headers['if-none-match'] === etag) {
    response.writeHead(304, headers).end()
    return
  }
  const body = await readFile(asset.file)
  response.writeHead(200, { ...headers, 'content-length': body.length })
  response.end(request.method === 'HEAD' ? undefined : body)
}
