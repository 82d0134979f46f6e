/**
 * The ClickHouse HTTP interface, plainly: node:http(s) with keep-alive, one request per call, no
 * dependency. A statement goes in the body (or, for an INSERT with data, in `?query=`), settings
 * and query parameters (`param_<name>`) in the URL, credentials in an `Authorization: Basic`
 * header (18.16 has no `X-ClickHouse-User`). Every request is bounded by a timeout from start to
 * the end of the answer, past which the socket is destroyed.
 *
 * Answers are returned whatever their status (`request`), with the start of the body and the
 * exception code header; `query` is the convenience that throws `ClickHouseError` on anything but
 * 2xx. A request that fails on a kept-alive socket the server had just closed (ECONNRESET/EPIPE
 * before any answer; 18.16 closes idle connections after `keep_alive_timeout`, 3 s by default) is
 * sent once more on a fresh socket, as Node's documentation recommends: the server never saw it.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { spillwayError } from '../../errors.ts'
import { type ClickHouseAnswer, describe, exceptionCode } from './verdict.ts'

export interface ClickHouseClientOptions {
  /** `http(s)://host:port`, optionally with `user:password@` (which then wins over the options). */
  readonly url: string
  readonly user?: string
  readonly password?: string
  /** Default bound of one request. */
  readonly timeoutMs?: number
  readonly maxSockets?: number
}

export interface RequestOptions {
  /** SQL in the body (no `data`), or in `?query=` when `data` is the body (an INSERT). */
  readonly sql: string
  readonly data?: Buffer
  /** `data` is gzip'd (`Content-Encoding: gzip`). */
  readonly gzip?: boolean
  readonly settings?: Readonly<Record<string, string | number>>
  /** Query parameters: `{name:Type}` in the SQL, `param_name=value` in the URL. */
  readonly params?: Readonly<Record<string, string | number>>
  readonly timeoutMs?: number
  /** How much of the body to keep (default 64 KiB); queries ask for all of it. */
  readonly maxBodyBytes?: number
}

export interface FullAnswer extends ClickHouseAnswer {
  readonly body: string
  /** The body was cut at `maxBodyBytes`. */
  readonly truncated: boolean
}

/** A ClickHouse exception (an answer that is not 2xx), with its code when the server said it. */
export class ClickHouseError extends Error {
  readonly status: number
  readonly code: number | undefined
  constructor(answer: ClickHouseAnswer) {
    super(describe(answer))
    this.name = 'ClickHouseError'
    this.status = answer.status
    this.code = exceptionCode(answer)
  }
}

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_BODY = 64 * 1024
const RESENDABLE = new Set(['ECONNRESET', 'EPIPE'])

export class ClickHouseClient {
  readonly #base: URL
  /** The server without credentials, for messages and logs. */
  readonly where: string
  readonly #authorization: string
  readonly #timeoutMs: number
  readonly #agent: HttpAgent
  readonly #request: typeof httpRequest

  constructor(options: ClickHouseClientOptions) {
    const url = new URL(options.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `option clickhouseUrl: expected an http:// or https:// URL, got ${url.protocol}`,
      )
    }
    const user = decodeURIComponent(url.username) || options.user || 'default'
    const password = url.username ? decodeURIComponent(url.password) : (options.password ?? '')
    url.username = ''
    url.password = ''
    url.search = ''
    url.hash = ''
    this.#base = url
    this.where = url.origin
    this.#authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const https = url.protocol === 'https:'
    const Agent = https ? HttpsAgent : HttpAgent
    this.#agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 4 })
    this.#request = https ? httpsRequest : httpRequest
  }

  /** One statement; resolves with the answer whatever its status, rejects when none came. */
  async request(options: RequestOptions): Promise<FullAnswer> {
    try {
      return await this.#send(options)
    } catch (error) {
      if (!(error as { resendable?: boolean }).resendable) throw error
      return this.#send(options)
    }
  }

  /** One statement whose answer must be 2xx; resolves with the body. */
  async query(sql: string, options: Omit<RequestOptions, 'sql' | 'data' | 'gzip'> = {}): Promise<string> {
    const answer = await this.request({ maxBodyBytes: Number.POSITIVE_INFINITY, ...options, sql })
    if (answer.status < 200 || answer.status >= 300) throw new ClickHouseError(answer)
    return answer.body
  }

  close(): void {
    this.#agent.destroy()
  }

  #send(options: RequestOptions): Promise<FullAnswer> {
    const url = new URL(this.#base)
    const search = url.searchParams
    if (options.data) search.set('query', options.sql)
    for (const [name, value] of Object.entries(options.settings ?? {})) search.set(name, String(value))
    for (const [name, value] of Object.entries(options.params ?? {}))
      search.set(`param_${name}`, String(value))
    const body = options.data ?? Buffer.from(options.sql, 'utf8')
    const headers: Record<string, string> = {
      authorization: this.#authorization,
      'content-type': options.data ? 'application/octet-stream' : 'text/plain; charset=utf-8',
      'content-length': String(body.length),
    }
    if (options.gzip) headers['content-encoding'] = 'gzip'
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY
    return new Promise<FullAnswer>((resolve, reject) => {
      let answered = false
      const req = this.#request(url, { method: 'POST', headers, agent: this.#agent }, (res) => {
        answered = true
        const chunks: Buffer[] = []
        let kept = 0
        res.on('data', (chunk: Buffer) => {
          if (kept < maxBody) {
            chunks.push(chunk)
            kept += chunk.length
          }
        })
        res.on('end', () => {
          clearTimeout(timer)
          const all = Buffer.concat(chunks)
          const truncated = all.length > maxBody
          resolve({
            status: res.statusCode ?? 0,
            codeHeader: header(res.headers, 'x-clickhouse-exception-code'),
            body: (truncated ? all.subarray(0, maxBody) : all).toString('utf8'),
            truncated,
          })
        })
        res.on('error', fail)
      })
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }))
      }, timeoutMs)
      function fail(error: NodeJS.ErrnoException) {
        clearTimeout(timer)
        if (!answered && req.reusedSocket && RESENDABLE.has(error.code ?? '')) {
          Object.assign(error, { resendable: true })
        }
        reject(error)
      }
      req.on('error', fail)
      req.end(body)
    })
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
