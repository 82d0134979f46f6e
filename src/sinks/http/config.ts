/**
 * Options of the `http` sink and how they come out of the server's configuration
 * (`httpSinkUrl`, `httpSinkTimeoutMs`, `httpSinkHeaders`, `httpSinkGzip`).
 */
import { maskUrl } from '../../config/mask.ts'
import type { Config } from '../../config/schema.ts'
import { spillwayError } from '../../errors.ts'
import type { Logger } from '../../telemetry/logger.ts'

export interface HttpSinkOptions {
  /** Sink name: in logs, errors and the `Idempotency-Key`. */
  readonly name?: string
  /** Where each batch is POSTed (http or https). */
  readonly url: string
  /** One request's bound, from sending to the end of the answer. */
  readonly timeoutMs?: number
  /** Extra request headers (authorization, a tenant…); the sink's own framing headers win. */
  readonly headers?: Readonly<Record<string, string>>
  /** Gzip request bodies (`Content-Encoding: gzip`). */
  readonly gzip?: boolean
  /** Keep-alive connections to the receiver (one loop writes one batch at a time). */
  readonly maxSockets?: number
  readonly logger?: Logger
}

export const HTTP_SINK_DEFAULTS = {
  name: 'http',
  timeoutMs: 10_000,
  gzip: true,
  maxSockets: 2,
} as const satisfies Partial<HttpSinkOptions>

/** The sink's options from the server configuration; a bad value fails naming the option. */
export function httpSinkOptions(config: Config, name: string, logger?: Logger): HttpSinkOptions {
  if (!config.httpSinkUrl) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `sink ${name} needs a receiver: set httpSinkUrl (SPILLWAY_HTTP_SINK_URL, --http-sink-url)`,
    )
  }
  return {
    name,
    url: checkUrl(config.httpSinkUrl),
    timeoutMs: config.httpSinkTimeoutMs,
    headers: parseHeaders(config.httpSinkHeaders),
    gzip: config.httpSinkGzip,
    logger,
  }
}

export function checkUrl(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option httpSinkUrl: not a URL: ${JSON.stringify(maskUrl(text))}`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option httpSinkUrl: expected an http:// or https:// URL, got ${url.protocol}`,
    )
  }
  return url.href
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * `httpSinkHeaders`: a JSON object of strings (`{"Authorization":"Bearer x"}`), or `Name: value`
 * entries separated by newlines or commas (`Authorization: Bearer x, X-Tenant: 7`); a value that
 * holds a comma needs the JSON form. Empty → no headers. Names are lower-cased.
 */
export function parseHeaders(text: string): Record<string, string> {
  const trimmed = text.trim()
  if (trimmed === '') return {}
  let pairs: [string, unknown][]
  if (trimmed.startsWith('{')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch (error) {
      throw badHeaders(`not valid JSON (${(error as Error).message})`)
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw badHeaders('expected a JSON object of header names to values')
    }
    pairs = Object.entries(parsed)
  } else {
    pairs = trimmed
      .split(/[\n,]/)
      .map((entry) => entry.trim())
      .filter(Boolean)
      .map((entry) => {
        const colon = entry.indexOf(':')
        if (colon <= 0) throw badHeaders(`expected "Name: value", got ${JSON.stringify(entry)}`)
        return [entry.slice(0, colon).trim(), entry.slice(colon + 1).trim()]
      })
  }
  const headers: Record<string, string> = {}
  for (const [name, value] of pairs) {
    if (!TOKEN.test(name)) throw badHeaders(`${JSON.stringify(name)} is not a header name`)
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) {
      throw badHeaders(`the value of ${name} must be a string on one line`)
    }
    headers[name.toLowerCase()] = value
  }
  return headers
}

function badHeaders(what: string): Error {
  return spillwayError('SPW_ERR_CONFIG_INVALID', `option httpSinkHeaders: ${what}`)
}
