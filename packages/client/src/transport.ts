/**
 * One request: a batch of queued lines → `POST /events/batch?results=full` as NDJSON, each line
 * stamped with `sent_at` now (the server corrects clock skew with it, so a retry an hour later is
 * stamped again), gzip'd above a size, and the answer turned into what the client does next.
 * The server's answer is read in both forms it has had: per-event `results`, or the counts and
 * the `rejected` indexes.
 */
import { isRetryableStatus, rateLimitWaitMs, retryAfterMs } from './retry.ts'

export interface Rejection {
  readonly index: number
  readonly error: string
}

export type SendOutcome =
  /** 2xx: every event not in `rejected` is stored or was already (`duplicates`). */
  | {
      readonly kind: 'delivered'
      readonly status: number
      readonly accepted: number
      readonly duplicates: number
      readonly rejected: readonly Rejection[]
      readonly rateLimitWaitMs: number
    }
  /** The same request may succeed later: network error, timeout, 408, 429, 5xx. */
  | {
      readonly kind: 'retry'
      readonly status: number | undefined
      readonly error: string
      readonly retryAfterMs: number | undefined
    }
  /** Refused for good (400, 401, …): `rejected` has the per-event reasons when the server gave them. */
  | {
      readonly kind: 'reject'
      readonly status: number
      readonly error: string
      readonly rejected: readonly Rejection[]
    }
  /** 413: the request was too big for the server's limits (not any one event). */
  | { readonly kind: 'too-large'; readonly status: number; readonly error: string }

export interface SendOptions {
  readonly endpoint: string
  readonly apiKey: string | undefined
  readonly gzipAboveBytes: number
  readonly timeoutMs: number
  readonly keepalive: boolean
  readonly fetch: typeof fetch
  /** Aborts the request when the client gives up (close with a timeout). */
  readonly signal: AbortSignal
}

/** NDJSON of the lines with `sent_at` (Unix seconds) added as the last field of each. */
export function ndjsonBody(lines: readonly string[], sentAt: number): string {
  const suffix = `,"sent_at":${sentAt}}\n`
  let body = ''
  for (const line of lines) body += line.slice(0, -1) + suffix
  return body
}

export async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'))
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

/**
 * Sends one batch. Without gzip the request leaves before the first await, which a page-hide
 * handler relies on: the browser only honours `keepalive` requests started inside the handler.
 */
export async function sendBatch(lines: readonly string[], options: SendOptions): Promise<SendOutcome> {
  const text = ndjsonBody(lines, Math.round(Date.now() / 1000))
  const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' }
  if (options.apiKey !== undefined) headers['authorization'] = `Bearer ${options.apiKey}`
  const controller = new AbortController()
  const abort = () => controller.abort(options.signal.reason)
  if (options.signal.aborted) abort()
  else options.signal.addEventListener('abort', abort, { once: true })
  const timer = setTimeout(
    () => controller.abort(new Error(`no answer within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  )
  try {
    let body: string | Uint8Array = text
    if (text.length > options.gzipAboveBytes) {
      body = await gzip(text)
      headers['content-encoding'] = 'gzip'
    }
    const response = await options.fetch(options.endpoint, {
      method: 'POST',
      headers,
      body: body as RequestInit['body'],
      keepalive: options.keepalive && byteSize(body) <= KEEPALIVE_BYTES,
      signal: controller.signal,
    })
    return await outcomeOf(response)
  } catch (error) {
    const reason = controller.signal.aborted ? controller.signal.reason : error
    return { kind: 'retry', status: undefined, error: describeFailure(reason), retryAfterMs: undefined }
  } finally {
    clearTimeout(timer)
    options.signal.removeEventListener('abort', abort)
  }
}

/** Browsers refuse a `keepalive` request whose body is over 64 KiB. */
export const KEEPALIVE_BYTES = 64 * 1024

function byteSize(body: string | Uint8Array): number {
  return typeof body === 'string' ? new Blob([body]).size : body.byteLength
}

async function outcomeOf(response: Response): Promise<SendOutcome> {
  const status = response.status
  const answer = await readJson(response)
  const error = typeof answer?.['error'] === 'string' ? (answer['error'] as string) : `HTTP ${status}`
  if (status >= 200 && status < 300) {
    const rejected = rejectionsOf(answer)
    const duplicates = Array.isArray(answer?.['results'])
      ? (answer['results'] as { status?: unknown }[]).filter((r) => r?.status === 'duplicate').length
      : Number(answer?.['duplicates'] ?? 0)
    return {
      kind: 'delivered',
      status,
      accepted: Number(answer?.['accepted'] ?? 0),
      duplicates: Number.isFinite(duplicates) ? duplicates : 0,
      rejected,
      rateLimitWaitMs: rateLimitWaitMs(response.headers),
    }
  }
  if (isRetryableStatus(status)) {
    const serverDelay = Math.max(
      retryAfterMs(response.headers.get('retry-after')) ?? 0,
      status === 429 ? rateLimitWaitMs(response.headers) : 0,
    )
    return {
      kind: 'retry',
      status,
      error: `${status} ${error}`,
      retryAfterMs: serverDelay > 0 ? serverDelay : undefined,
    }
  }
  if (status === 413) return { kind: 'too-large', status, error }
  return { kind: 'reject', status, error, rejected: rejectionsOf(answer) }
}

async function readJson(response: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const value: unknown = JSON.parse(await response.text())
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** The refused events of an answer, from `results` when the server sent them, else `rejected`. */
function rejectionsOf(answer: Record<string, unknown> | undefined): Rejection[] {
  const out: Rejection[] = []
  const results = answer?.['results']
  if (Array.isArray(results)) {
    for (const r of results as Record<string, unknown>[]) {
      if (r?.['status'] === 'rejected' && Number.isInteger(r['index'])) {
        out.push({ index: r['index'] as number, error: String(r['error'] ?? 'rejected') })
      }
    }
    return out
  }
  const rejected = answer?.['rejected']
  if (Array.isArray(rejected)) {
    for (const r of rejected as Record<string, unknown>[]) {
      if (Number.isInteger(r?.['index']))
        out.push({ index: r['index'] as number, error: String(r['error'] ?? 'rejected') })
    }
  }
  return out
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as { cause?: unknown }).cause
  const detail = cause instanceof Error ? `: ${(cause as { code?: string }).code ?? cause.message}` : ''
  return `${error.message}${detail}`
}
