/**
 * The ingest routes (`POST /events`, `/events/batch`, `/events/bulk`) on bare node:http.
 *
 * Why not fastify: these routes are the hot path, and fastify's request pipeline (routing, hooks,
 * the content-type parser's promise, the reply's serialisation and onSend chain) cost about a
 * third of the HTTP thread's time per event (profile in README "Where the time goes"). Every
 * other route stays on fastify. The API server hands these requests here before fastify sees them
 * (app.ts `serverFactory`), and fastify's own routes for them call the same handler after
 * `reply.hijack()`, so `app.inject()` in tests runs exactly this code.
 *
 * Order, each step answering at once when it refuses (docs/ARCHITECTURE.md "Admission"):
 * closing → API key (401) → rate limit (429) → admission (503) → content type (415) → declared
 * length (413) → `100 Continue` → body, reserved against `maxPendingBytes` as its bytes arrive
 * (413 over the limit, 503 when memory is full) → gzip → parse, validate, WAL append → 202.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Config } from '../config/schema.ts'
import { isSpillwayError, spillwayError } from '../errors.ts'
import type { Ingestor } from '../ingest/ingestor.ts'
import type { IntakeContext } from '../intake/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ServerMetrics } from '../telemetry/metrics.ts'
import { logAccess, pathOf, receivedOf } from './access-log.ts'
import { type Admission, contentLengthOf, isRefusal, type Refusal, type Reservation } from './admission.ts'
import { type ApiKeys, presentedKey } from './auth.ts'
import { inflate, JSON_TYPES, NDJSON_TYPES, parseJsonBody } from './body.ts'
import type { RateDecision, TokenSource } from './rate-limit.ts'

export type IngestRoute = '/events' | '/events/batch' | '/events/bulk'

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/
/** A body refused unread that is larger than this (or of unknown length) closes the connection. */
const DISCARD_BODY_BYTES = 64 * 1024
const JSON_SET = new Set(JSON_TYPES)
const NDJSON_SET = new Set(NDJSON_TYPES)

/** A client's (or a proxy's) X-Request-Id when it is sane, so one id follows a request through every hop's logs; else a new one. */
export function requestIdOf(given: string | string[] | undefined): string {
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}

/** The ingest route a request is for, or undefined; cheap (runs for every request of the port). */
export function ingestRouteOf(method: string | undefined, url: string | undefined): IngestRoute | undefined {
  if (method !== 'POST' || url === undefined || !url.startsWith('/events')) return undefined
  const end = url.indexOf('?')
  const path = end < 0 ? url : url.slice(0, end)
  return path === '/events' || path === '/events/batch' || path === '/events/bulk' ? path : undefined
}

export interface IngestHandlerDeps {
  readonly config: Config
  readonly ingestor: Ingestor
  readonly admission: Admission
  readonly metrics: ServerMetrics
  readonly logger: Logger
  readonly apiKeys: ApiKeys
  readonly limiter?: TokenSource
  /** The rate limit's bucket size (RateLimit-Limit). */
  readonly burst: number
  /** The client's address for rate limits without API keys (the socket's, or a trusted proxy's word). */
  readonly clientIp?: (request: IncomingMessage) => string
  /** The client's address as `trustProxy` names it, for the access log (not the rate limit's /64 bucket). */
  readonly clientAddress?: (request: IncomingMessage) => string
}

/** One request on its way through the handler. */
class Exchange {
  readonly request: IncomingMessage
  readonly response: ServerResponse
  readonly route: IngestRoute
  readonly started = performance.now()
  readonly id: string
  readonly bodyLimit: number
  /** The API key's label; 'missing' / 'unrecognised' for a refused key; undefined without keys. */
  key: string | undefined
  rate: RateDecision | undefined
  reservation: Reservation | undefined
  /** Body bytes not read (a refusal before or during the read): the connection is not reused for large ones. */
  unread = true
  answered = false

  constructor(request: IncomingMessage, response: ServerResponse, route: IngestRoute, bodyLimit: number) {
    this.request = request
    this.response = response
    this.route = route
    this.bodyLimit = bodyLimit
    this.id = requestIdOf(request.headers['x-request-id'])
  }
}

/** An error as the API answers it: status, one-sentence message, extra headers. */
export interface ErrorAnswer {
  readonly status: number
  readonly message: string
  readonly headers: Record<string, string>
}

/**
 * How an error is answered, on every route: a SpillwayError by its catalogue status; the few
 * fastify / node errors a client can cause by a clear sentence; anything else a generic 500.
 */
export function errorAnswer(error: unknown, bodyLimit: number | undefined): ErrorAnswer {
  if (isSpillwayError(error)) {
    const headers: Record<string, string> = {}
    if (error.statusCode === 503)
      headers['retry-after'] = String((error as { retryAfterSeconds?: number }).retryAfterSeconds ?? 1)
    if (error.statusCode === 401) headers['www-authenticate'] = 'Bearer realm="spillway"'
    return { status: error.statusCode, message: error.message, headers }
  }
  const code = (error as { code?: string } | null)?.code
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: `body is larger than ${bodyLimit} bytes`, headers: {} }
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        message: 'Content-Type is missing or not supported; send application/json',
        headers: {},
      }
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, message: 'Content-Length does not match the body', headers: {} }
  }
  const status = (error as { statusCode?: number } | null)?.statusCode ?? 500
  if (status < 500) return { status, message: (error as Error).message, headers: {} }
  return { status: 500, message: 'internal error; the event was not accepted, retry', headers: {} }
}

export class IngestHandler {
  readonly #deps: IngestHandlerDeps
  readonly #limits: Record<IngestRoute, number>
  /** `accessLog` on: the client's address as `trustProxy` names it (not the rate limit's /64 bucket). */
  readonly #accessClient: ((request: IncomingMessage) => string) | undefined

  constructor(deps: IngestHandlerDeps) {
    this.#deps = deps
    if (deps.config.accessLog)
      this.#accessClient = deps.clientAddress ?? ((request) => request.socket.remoteAddress ?? 'unknown')
    this.#limits = {
      '/events': deps.config.maxBodyBytes,
      '/events/batch': deps.config.maxBatchBytes,
      '/events/bulk': deps.config.maxBatchBytes,
    }
  }

  /** Answers the request; never throws. `expectsContinue`: the client waits for `100 Continue`. */
  handle(
    request: IncomingMessage,
    response: ServerResponse,
    route: IngestRoute,
    expectsContinue = false,
  ): void {
    const ex = new Exchange(request, response, route, this.#limits[route])
    response.once('close', () => ex.reservation?.release())
    try {
      const { ingestor, apiKeys, limiter } = this.#deps
      ingestor.admit()
      if (apiKeys.enabled) {
        const presented = presentedKey(request.headers)
        try {
          ex.key = apiKeys.authenticate(presented)
        } catch (error) {
          ex.key = presented === undefined ? 'missing' : 'unrecognised'
          if (!limiter) throw error
          this.#unauthorized(ex, error)
          return
        }
      }
      if (limiter) {
        const client = ex.key ?? this.#deps.clientIp?.(request) ?? request.socket.remoteAddress ?? 'unknown'
        limiter.take(client).then(
          (decision) => {
            ex.rate = decision
            if (decision.allowed) this.#admit(ex, expectsContinue)
            else this.#rateLimited(ex, client, decision)
          },
          (error: unknown) => this.#fail(ex, error),
        )
        return
      }
      this.#admit(ex, expectsContinue)
    } catch (error) {
      this.#fail(ex, error)
    }
  }

  #admit(ex: Exchange, expectsContinue: boolean): void {
    try {
      const { request } = ex
      const contentLength = contentLengthOf(request.headers['content-length'])
      const verdict = this.#deps.admission.admit({ contentLength })
      if (isRefusal(verdict)) {
        this.#refused(ex, verdict, contentLength)
        return
      }
      ex.reservation = verdict
      const ndjson = this.#contentType(request)
      if (contentLength !== undefined && contentLength > ex.bodyLimit) {
        throw spillwayError('SPW_ERR_INTAKE_TOO_LARGE', `body is larger than ${ex.bodyLimit} bytes`)
      }
      if (contentLength === 0 || (contentLength === undefined && !request.headers['transfer-encoding'])) {
        ex.unread = false
        this.#ingest(ex, Buffer.alloc(0), ndjson ?? false)
        return
      }
      if (ndjson === undefined) {
        throw spillwayError(
          'SPW_ERR_INTAKE_UNSUPPORTED_MEDIA_TYPE',
          `Content-Type (none) is not supported; send application/json${ex.route === '/events' ? '' : ' or application/x-ndjson'}`,
        )
      }
      if (expectsContinue) ex.response.writeContinue()
      this.#read(ex, ndjson)
    } catch (error) {
      this.#fail(ex, error)
    }
  }

  /** true: NDJSON, false: JSON, undefined: no Content-Type; throws 415 on any other type. */
  #contentType(request: IncomingMessage): boolean | undefined {
    const header = request.headers['content-type']
    if (header === undefined) return undefined
    const semi = header.indexOf(';')
    const essence = (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase()
    if (JSON_SET.has(essence)) return false
    if (NDJSON_SET.has(essence)) return true
    throw spillwayError(
      'SPW_ERR_INTAKE_UNSUPPORTED_MEDIA_TYPE',
      `Content-Type "${header.slice(0, 100)}" is not supported; send application/json` +
        (request.url?.startsWith('/events/') ? ' or application/x-ndjson' : ''),
    )
  }

  /** Reads the body, reserving its bytes as they arrive (a slow body holds only what it sent). */
  #read(ex: Exchange, ndjson: boolean): void {
    const { request } = ex
    const chunks: Buffer[] = []
    let received = 0
    const stop = () => {
      request.removeListener('data', onData)
      request.removeListener('end', onEnd)
      request.removeListener('error', onError)
    }
    const onData = (chunk: Buffer) => {
      received += chunk.length
      if (received > ex.bodyLimit) {
        stop()
        this.#fail(ex, spillwayError('SPW_ERR_INTAKE_TOO_LARGE', `body is larger than ${ex.bodyLimit} bytes`))
        return
      }
      const refusal = ex.reservation!.grow(chunk.length)
      if (refusal) {
        stop()
        this.#refused(ex, refusal, undefined)
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => {
      stop()
      ex.unread = false
      this.#ingest(ex, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received), ndjson)
    }
    const onError = (error: Error) => {
      stop()
      this.#fail(ex, Object.assign(error, { statusCode: 400 }))
    }
    request.on('data', onData)
    request.on('end', onEnd)
    request.on('error', onError)
  }

  async #ingest(ex: Exchange, body: Buffer, ndjson: boolean): Promise<void> {
    const { ingestor, config } = this.#deps
    try {
      const bytes = await inflate(body, ex.request.headers['content-encoding'], ex.bodyLimit)
      // What inflation added is reserved like arriving bytes: refused (503) past maxPendingBytes
      // while other requests hold bytes, as admission.ts says.
      const refusal = bytes === body ? undefined : ex.reservation?.grow(bytes.length - body.length)
      if (refusal) {
        this.#refused(ex, refusal, undefined)
        return
      }
      const query = queryOf(ex.request.url)
      const durable = wantsDurable(query, config.ack === 'durable')
      const ctx = contextOf(ex.request, ex.key)
      if (bytes.length === 0 && ex.request.headers['content-type'] === undefined) {
        throw spillwayError(
          'SPW_ERR_INTAKE_BAD_JSON',
          'body is empty; send JSON with Content-Type: application/json',
        )
      }
      if (ex.route === '/events') {
        const input = parseJsonBody({ bytes, ndjson }, config.maxDepth)
        const outcome = await ingestor.acceptEvent(input, ctx, durable)
        ex.reservation?.release()
        this.#answer(
          ex,
          202,
          outcome.duplicate
            ? { status: 'accepted', event_id: outcome.event_id, duplicate: true }
            : { status: 'accepted', event_id: outcome.event_id },
        )
        return
      }
      const outcome = await ingestor.acceptBatch(
        bytes,
        ndjson,
        ctx,
        durable,
        keepsRejected(query),
        wantsResults(query),
      )
      ex.reservation?.release()
      if (outcome.accepted === 0 && outcome.duplicates === 0) {
        this.#answer(ex, 400, { error: `all ${outcome.rejected.length} events were rejected`, ...outcome })
        return
      }
      this.#answer(ex, 202, outcome)
    } catch (error) {
      this.#fail(ex, error)
    }
  }

  #refused(ex: Exchange, refusal: Refusal, contentLength: number | undefined): void {
    const { metrics } = this.#deps
    metrics.received(1)
    metrics.rejected('overloaded', 1)
    const headers: Record<string, string> = { 'retry-after': String(refusal.retryAfterSeconds) }
    if (leavesLargeBodyUnread(ex, contentLength)) headers['connection'] = 'close'
    this.#answer(
      ex,
      503,
      { error: refusal.message, bound: refusal.bound, value: refusal.value, limit: refusal.limit },
      headers,
    )
  }

  /** A refused key takes a token of its client's `unauthorized:` bucket: a key-guessing client gets 429s. */
  #unauthorized(ex: Exchange, error: unknown): void {
    const client = this.#deps.clientIp?.(ex.request) ?? ex.request.socket.remoteAddress ?? 'unknown'
    this.#deps.limiter!.take(`unauthorized:${client}`).then(
      (decision) => {
        ex.rate = decision
        if (decision.allowed) this.#fail(ex, error)
        else this.#rateLimited(ex, client, decision, `client ${client}`)
      },
      () => this.#fail(ex, error),
    )
  }

  #rateLimited(ex: Exchange, client: string, decision: RateDecision, who?: string): void {
    const { metrics, config } = this.#deps
    metrics.received(1)
    metrics.rejected('rate_limited', 1)
    who ??= ex.key !== undefined ? `API key "${client}"` : `client ${client}`
    this.#answer(
      ex,
      429,
      {
        error: `rate limit of ${config.rateLimitPerSecond} requests/s (burst ${this.#deps.burst}) exceeded for ${who}; retry after ${decision.retryAfterSeconds} s`,
      },
      { 'retry-after': String(decision.retryAfterSeconds) },
    )
  }

  #fail(ex: Exchange, error: unknown): void {
    const { metrics, logger } = this.#deps
    ex.reservation?.release()
    metrics.requestFailed(error)
    const answer = errorAnswer(error, ex.bodyLimit)
    if (answer.status === 503) {
      // A refusal the client retries; its cause is logged once where it happens (WalGroupFailed…).
      logger.debug({ err: error, reqId: ex.id, url: ex.request.url }, 'request refused')
    } else if (answer.status >= 500) {
      logger.error({ err: error, reqId: ex.id, url: ex.request.url }, 'request failed')
    }
    const headers = answer.headers
    if (leavesLargeBodyUnread(ex, contentLengthOf(ex.request.headers['content-length'])))
      headers['connection'] = 'close'
    this.#answer(ex, answer.status, { error: answer.message }, headers)
  }

  #answer(ex: Exchange, status: number, body: object, extra?: Record<string, string>): void {
    if (ex.answered) return
    ex.answered = true
    const { response } = ex
    if (response.destroyed || response.headersSent) return
    const payload = JSON.stringify(body)
    const bytes = Buffer.byteLength(payload)
    const headers: string[] = [
      'content-type',
      'application/json; charset=utf-8',
      'content-length',
      String(bytes),
      'x-request-id',
      ex.id,
    ]
    if (ex.rate) {
      headers.push(
        'ratelimit-limit',
        String(this.#deps.burst),
        'ratelimit-remaining',
        String(ex.rate.remaining),
        'ratelimit-reset',
        String(ex.rate.resetSeconds),
      )
    }
    if (extra) for (const name in extra) headers.push(name, extra[name])
    if (status === 401 && extra?.['www-authenticate'] === undefined)
      headers.push('www-authenticate', 'Bearer realm="spillway"')
    if (this.#deps.ingestor.closed && extra?.['connection'] === undefined) headers.push('connection', 'close')
    response.writeHead(status, headers)
    response.end(payload)
    const { metrics } = this.#deps
    const ms = performance.now() - ex.started
    metrics.request(ex.route, 'POST', status, ms, true)
    if (ex.key !== undefined) metrics.keyedRequest(ex.key, ex.route, status)
    if (this.#accessClient !== undefined) {
      logAccess(this.#deps.logger, {
        method: 'POST',
        path: pathOf(ex.request.url),
        status,
        ms: Math.round(ms * 1000) / 1000,
        bytes,
        received: receivedOf(ex.request),
        reqId: ex.id,
        client: this.#accessClient(ex.request),
      })
    }
  }
}

/** An answer before a body over DISCARD_BODY_BYTES (or of unknown length) was read closes the connection instead of draining it. */
function leavesLargeBodyUnread(ex: Exchange, contentLength: number | undefined): boolean {
  return ex.unread && (contentLength === undefined || contentLength > DISCARD_BODY_BYTES)
}

function queryOf(url: string | undefined): URLSearchParams | undefined {
  const at = url?.indexOf('?') ?? -1
  return at < 0 ? undefined : new URLSearchParams(url!.slice(at + 1))
}

/** `?wait=`: the durable answer (default) or the fast one for this request. */
function wantsDurable(query: URLSearchParams | undefined, durableByDefault: boolean): boolean {
  const wait = single(query, 'wait')
  if (wait === null || wait === 'true' || wait === '1') return durableByDefault
  if (wait === 'false' || wait === '0') return false
  throw spillwayError('SPW_ERR_INTAKE_INVALID', `wait must be true or false, got "${wait.slice(0, 40)}"`)
}

/** `?dead_letter=false`: invalid events answered, not kept (a client that keeps them, e.g. dlq replay). */
function keepsRejected(query: URLSearchParams | undefined): boolean {
  const keep = single(query, 'dead_letter')
  if (keep === null || keep === 'true' || keep === '1') return true
  if (keep === 'false' || keep === '0') return false
  throw spillwayError(
    'SPW_ERR_INTAKE_INVALID',
    `dead_letter must be true or false, got "${keep.slice(0, 40)}"`,
  )
}

/** `?results=full`: every event's fate and id in a batch's answer (ingest.ts EventResult). */
function wantsResults(query: URLSearchParams | undefined): boolean {
  const results = single(query, 'results')
  if (results === null) return false
  if (results === 'full') return true
  throw spillwayError(
    'SPW_ERR_INTAKE_INVALID',
    `results must be "full" or left out, got "${results.slice(0, 40)}"`,
  )
}

/** A query parameter given at most once (`?wait=false&wait=true` is a 400, not the first one's word). */
function single(query: URLSearchParams | undefined, name: string): string | null {
  if (query === undefined) return null
  const values = query.getAll(name)
  if (values.length > 1)
    throw spillwayError('SPW_ERR_INTAKE_INVALID', `${name} must be given once, got ${values.length} values`)
  return values[0] ?? null
}

function contextOf(request: IncomingMessage, tenant: string | undefined): IntakeContext {
  const key = request.headers['idempotency-key']
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 128)) {
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      'Idempotency-Key must be one non-empty value of at most 128 characters',
    )
  }
  return key === undefined
    ? { receivedAt: Date.now(), tenant }
    : { receivedAt: Date.now(), idempotencyKey: key, tenant }
}
