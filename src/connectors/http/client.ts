/**
 * One bounded HTTP client on node:http(s), without a dependency, for the ClickHouse client and the
 * `http` sink: kept-alive sockets (one Agent per client), one request per call, each bounded by a
 * timeout from start to the end of the answer — past it the socket is destroyed and the request
 * rejects with code ETIMEDOUT. Only the start of an answer's body is kept (`maxBodyBytes`); the
 * rest is read and dropped, so a chatty server costs no memory.
 *
 * An answer resolves whatever its status; only a request that got none rejects (`noAnswer`,
 * errors.ts, says so in one line). With `resendOnStaleSocket`, a request that fails on a
 * kept-alive socket the server had just closed (ECONNRESET/EPIPE before any answer) is sent once
 * more on a fresh socket, as Node's documentation recommends: the server never saw it.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

export interface HttpClientOptions {
  /** Where requests go unless one names another URL; its protocol picks http or https. */
  readonly url: URL
  /** Bound of a request unless it names its own. */
  readonly timeoutMs: number
  readonly maxSockets: number
}

export interface HttpRequest {
  readonly method: string
  /** Default: the client's URL. */
  readonly url?: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Buffer
  readonly timeoutMs?: number
  /** How much of the answer's body to keep. */
  readonly maxBodyBytes: number
  /** Send again once when a kept-alive socket turned out closed before any answer (see the header). */
  readonly resendOnStaleSocket?: boolean
}

export interface HttpResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The start of the body, at most `maxBodyBytes`. */
  readonly body: string
  /** The body was cut at `maxBodyBytes`. */
  readonly truncated: boolean
}

const RESENDABLE = new Set(['ECONNRESET', 'EPIPE'])

export class HttpClient {
  readonly url: URL
  readonly #timeoutMs: number
  readonly #agent: HttpAgent
  readonly #request: typeof httpRequest

  constructor(options: HttpClientOptions) {
    this.url = options.url
    this.#timeoutMs = options.timeoutMs
    const https = options.url.protocol === 'https:'
    const Agent = https ? HttpsAgent : HttpAgent
    this.#agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets })
    this.#request = https ? httpsRequest : httpRequest
  }

  /** One request; resolves with the answer whatever its status, rejects when none came in time. */
  async request(options: HttpRequest): Promise<HttpResponse> {
    try {
      return await this.#send(options)
    } catch (error) {
      if (!options.resendOnStaleSocket || !(error as { resendable?: boolean }).resendable) throw error
      return this.#send(options)
    }
  }

  close(): void {
    this.#agent.destroy()
  }

  #send(options: HttpRequest): Promise<HttpResponse> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs
    const maxBody = options.maxBodyBytes
    const { method, headers } = options
    return new Promise<HttpResponse>((resolve, reject) => {
      let answered = false
      const req = this.#request(options.url ?? this.url, { method, headers, agent: this.#agent }, (res) => {
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
            headers: res.headers,
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
      req.end(options.body)
    })
  }
}

/** A header's (first) value. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}
