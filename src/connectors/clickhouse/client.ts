/**
 * The ClickHouse HTTP interface, plainly: the bounded HTTP client (../http/client.ts), one request
 * per call. A statement goes in the body (or, for an INSERT with data, in `?query=`), settings and
 * query parameters (`param_<name>`) in the URL, credentials in an `Authorization: Basic` header
 * (18.16 has no `X-ClickHouse-User`). Every request is bounded by a timeout from start to
 * the end of the answer, past which the socket is destroyed.
 *
 * Answers are returned whatever their status (`request`), with the start of the body and the
 * exception code header; `query` is the convenience that throws `ClickHouseError` on anything but
 * 2xx. A request that fails on a kept-alive socket the server had just closed (ECONNRESET/EPIPE
 * before any answer; 18.16 closes idle connections after `keep_alive_timeout`, 3 s by default) is
 * sent once more on a fresh socket, as Node's documentation recommends: the server never saw it.
 */

import { spillwayError } from '../../errors.ts'
import { HttpClient, header } from '../http/client.ts'
import { type ClickHouseAnswer, ClickHouseError } from './errors.ts'

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

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_BODY = 64 * 1024

export class ClickHouseClient {
  readonly #base: URL
  /** The server without credentials, for messages and logs. */
  readonly where: string
  readonly #authorization: string
  readonly #http: HttpClient

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
    this.#http = new HttpClient({
      url,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxSockets: options.maxSockets ?? 4,
    })
  }

  /** One statement; resolves with the answer whatever its status, rejects when none came. */
  async request(options: RequestOptions): Promise<FullAnswer> {
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
    const answer = await this.#http.request({
      method: 'POST',
      url,
      headers,
      body,
      timeoutMs: options.timeoutMs,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY,
      resendOnStaleSocket: true,
    })
    return {
      status: answer.status,
      codeHeader: header(answer.headers, 'x-clickhouse-exception-code'),
      body: answer.body,
      truncated: answer.truncated,
    }
  }

  /** One statement whose answer must be 2xx; resolves with the body. */
  async query(sql: string, options: Omit<RequestOptions, 'sql' | 'data' | 'gzip'> = {}): Promise<string> {
    const answer = await this.request({ maxBodyBytes: Number.POSITIVE_INFINITY, ...options, sql })
    if (answer.status < 200 || answer.status >= 300) throw new ClickHouseError(answer)
    return answer.body
  }

  close(): void {
    this.#http.close()
  }
}
