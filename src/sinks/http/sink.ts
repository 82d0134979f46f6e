/**
 * The `http` sink: POSTs each batch as NDJSON (one event per line, the WAL's own bytes when the
 * batch is whole records) to a receiver — a webhook, a collector, another pipeline's intake.
 *
 * Request: `POST <url>`, `Content-Type: application/x-ndjson`, gzip'd by default
 * (`Content-Encoding: gzip`), plus `Idempotency-Key: <sink>-<from>-<to>` — the batch's WAL range,
 * stable across retries and restarts for the same cut, so a receiver can drop a batch it already
 * took (delivery is at least once: after a timeout or a crash a batch may come again). A piece
 * that is cut inside records while isolating a refused event can share its range with a sibling
 * piece, so its key also carries a hash of its event ids. Events carry their `event_id` for
 * per-event deduplication.
 *
 * Answer → verdict: verdict.ts (2xx delivered; 408/429/5xx/no answer retry, honouring
 * Retry-After; other 4xx permanent with the body as the reason).
 *
 * Connections are kept alive (node:http Agent); each request is bounded by `timeoutMs` from start
 * to the end of the answer, past which the socket is destroyed and the verdict is `retry`. The
 * delivery loop never has two writes in flight to one sink, so the agent needs few sockets.
 * `ping` is a HEAD that counts any answer below 500 as alive (a receiver may not route HEAD).
 */
import { createHash } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { promisify } from 'node:util'
import { gzip as gzipCallback, constants as zlib } from 'node:zlib'
import { spillwayError } from '../../errors.ts'
import { dedupKeyOf } from '../../intake/event-id.ts'
import { encodeEvents } from '../../intake/serialize.ts'
import type { Logger } from '../../telemetry/logger.ts'
import { delivered, type Sink, type SinkBatch, type Verdict } from '../sink.ts'
import { HTTP_SINK_DEFAULTS, type HttpSinkOptions } from './config.ts'
import { type HttpAnswer, noAnswer, verdictForAnswer, verdictForError } from './verdict.ts'

const gzip = promisify(gzipCallback)

/** Bytes of a response body kept for the error message; the rest is read and dropped. */
const MAX_BODY_BYTES = 4096

export class HttpSink implements Sink {
  readonly name: string
  readonly acceptsNdjson = true
  readonly #url: URL
  /** The URL without credentials, for messages and logs. */
  readonly #where: string
  readonly #timeoutMs: number
  readonly #headers: Readonly<Record<string, string>>
  readonly #gzip: boolean
  readonly #maxSockets: number
  readonly #logger: Logger | undefined
  #agent: HttpAgent | undefined
  /** The body of the last batch, so a retry of the same batch does not compress it again. */
  #last: { batch: SinkBatch; body: Buffer } | undefined

  constructor(options: HttpSinkOptions) {
    this.name = options.name ?? HTTP_SINK_DEFAULTS.name
    this.#url = new URL(options.url)
    this.#where = `${this.#url.origin}${this.#url.pathname}`
    this.#timeoutMs = options.timeoutMs ?? HTTP_SINK_DEFAULTS.timeoutMs
    this.#headers = options.headers ?? {}
    this.#gzip = options.gzip ?? HTTP_SINK_DEFAULTS.gzip
    this.#maxSockets = options.maxSockets ?? HTTP_SINK_DEFAULTS.maxSockets
    this.#logger = options.logger
  }

  /** Nothing to connect yet: a receiver that is down at start is an outage, not a failed start. */
  async open(): Promise<void> {
    const Agent = this.#url.protocol === 'https:' ? HttpsAgent : HttpAgent
    this.#agent ??= new Agent({ keepAlive: true, maxSockets: this.#maxSockets })
  }

  async write(batch: SinkBatch): Promise<Verdict> {
    const agent = this.#agent
    if (!agent) throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${this.name} is not open`)
    const ndjson = batch.ndjson ?? encodeEvents(batch.events)
    if (ndjson.length === 0) return delivered
    const body = await this.#body(batch, ndjson)
    const headers: Record<string, string> = {
      'content-type': 'application/x-ndjson',
      ...this.#headers,
      'content-length': String(body.length),
      'idempotency-key': idempotencyKey(this.name, batch),
    }
    if (this.#gzip) headers['content-encoding'] = 'gzip'
    try {
      const answer = await this.#send('POST', headers, body)
      const verdict = verdictForAnswer(this.name, this.#where, answer)
      if (verdict.kind === 'delivered') this.#last = undefined
      return verdict
    } catch (error) {
      return verdictForError(this.name, this.#where, error)
    }
  }

  async ping(): Promise<void> {
    if (!this.#agent) throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${this.name} is not open`)
    let answer: HttpAnswer
    try {
      answer = await this.#send('HEAD', this.#headers)
    } catch (error) {
      throw noAnswer(this.name, this.#where, error)
    }
    if (answer.status >= 500) {
      throw spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `${this.name}: ${this.#where} answered HTTP ${answer.status}`,
      )
    }
  }

  async close(): Promise<void> {
    this.#agent?.destroy()
    this.#agent = undefined
    this.#last = undefined
  }

  async #body(batch: SinkBatch, ndjson: Buffer): Promise<Buffer> {
    if (!this.#gzip) return ndjson
    if (this.#last?.batch === batch) return this.#last.body
    // Speed over ratio: NDJSON compresses well even at level 1, and this runs once per batch.
    const body = await gzip(ndjson, { level: zlib.Z_BEST_SPEED })
    this.#last = { batch, body }
    return body
  }

  /** One request; resolves with the answer (any status), rejects when none came in time. */
  #send(method: 'POST' | 'HEAD', headers: Record<string, string>, body?: Buffer): Promise<HttpAnswer> {
    const request = this.#url.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise((resolve, reject) => {
      const req = request(this.#url, { method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = []
        let kept = 0
        res.on('data', (chunk: Buffer) => {
          if (kept < MAX_BODY_BYTES) {
            chunks.push(chunk)
            kept += chunk.length
          }
        })
        res.on('end', () => {
          clearTimeout(timer)
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: header(res.headers, 'retry-after'),
            body: Buffer.concat(chunks).subarray(0, MAX_BODY_BYTES).toString('utf8'),
          })
        })
        res.on('error', fail)
      })
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no answer within ${this.#timeoutMs} ms`), { code: 'ETIMEDOUT' }))
      }, this.#timeoutMs)
      function fail(error: Error) {
        clearTimeout(timer)
        reject(error)
      }
      req.on('error', fail)
      req.end(body)
    }).catch((error: Error) => {
      this.#logger?.debug({ sink: this.name, method, err: error }, 'HttpSinkRequestFailed')
      throw error
    }) as Promise<HttpAnswer>
  }
}

/**
 * `<sink>-<from>-<to>` for a batch of whole records; a piece cut inside records (no NDJSON from
 * the WAL) adds a hash of its event ids, since sibling pieces of one record share a range.
 */
export function idempotencyKey(sink: string, batch: SinkBatch): string {
  const key = `${sink}-${batch.from}-${batch.to}`
  if (batch.ndjson) return key
  const hash = createHash('sha256')
  for (const event of batch.events) hash.update(dedupKeyOf(event)).update('\n')
  return `${key}-${hash.digest('hex').slice(0, 16)}`
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
