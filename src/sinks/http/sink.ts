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
 * Requests go through the bounded HTTP client (src/connectors/http/client.ts): connections kept
 * alive, each request bounded by `timeoutMs` from start to the end of the answer, past which the
 * socket is destroyed and the verdict is `retry`. The
 * delivery loop never has two writes in flight to one sink, so the agent needs few sockets.
 * `ping` is a HEAD that counts any answer below 500 as alive (a receiver may not route HEAD).
 */
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { gzip as gzipCallback, constants as zlib } from 'node:zlib'
import { HttpClient, header } from '../../connectors/http/client.ts'
import { noAnswer } from '../../connectors/http/errors.ts'
import { spillwayError } from '../../errors.ts'
import { dedupKeyOf } from '../../intake/event-id.ts'
import { encodeEvents } from '../../intake/serialize.ts'
import type { Logger } from '../../telemetry/logger.ts'
import { delivered, type Sink, type SinkBatch, type Verdict } from '../sink.ts'
import { HTTP_SINK_DEFAULTS, type HttpSinkOptions } from './config.ts'
import { type HttpAnswer, verdictForAnswer, verdictForError } from './verdict.ts'

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
  #client: HttpClient | undefined
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
    this.#client ??= new HttpClient({
      url: this.#url,
      timeoutMs: this.#timeoutMs,
      maxSockets: this.#maxSockets,
    })
  }

  async write(batch: SinkBatch): Promise<Verdict> {
    if (!this.#client) throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${this.name} is not open`)
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
    if (!this.#client) throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${this.name} is not open`)
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
    this.#client?.close()
    this.#client = undefined
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
  async #send(method: 'POST' | 'HEAD', headers: Record<string, string>, body?: Buffer): Promise<HttpAnswer> {
    try {
      if (!this.#client) throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${this.name} is not open`)
      const answer = await this.#client.request({ method, headers, body, maxBodyBytes: MAX_BODY_BYTES })
      return { status: answer.status, retryAfter: header(answer.headers, 'retry-after'), body: answer.body }
    } catch (error) {
      this.#logger?.debug({ sink: this.name, method, err: error }, 'HttpSinkRequestFailed')
      throw error
    }
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
