/**
 * Request bodies. Fastify bounds the bytes on the wire (per-route bodyLimit); this module bounds
 * them again AFTER gzip inflation, so a 100 KB gzip bomb that would inflate to gigabytes is cut off
 * by zlib's maxOutputLength at the configured size and answered 413, never buffered whole.
 */
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { spillwayError } from '../errors.ts'
import { DEFAULT_MAX_DEPTH, EVENT_LEVELS, jsonText, nestingError } from '../intake/json.ts'

const gunzipAsync = promisify(gunzip)

export const JSON_TYPES = ['application/json']
export const NDJSON_TYPES = [
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/json-lines',
]

/** The raw, inflated body and whether it is NDJSON; routes parse it themselves. */
export interface RawBody {
  readonly bytes: Buffer
  readonly ndjson: boolean
}

/**
 * Replace fastify's parsers: JSON and NDJSON bodies arrive as Buffers, are inflated when gzip'd,
 * and are handed to the routes unparsed. Anything else is a 415 that says what is accepted.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(JSON_TYPES, { parseAs: 'buffer' }, (request, body, done) => {
    decodeBody(request, body as Buffer, false).then((raw) => done(null, raw), done)
  })
  app.addContentTypeParser(NDJSON_TYPES, { parseAs: 'buffer' }, (request, body, done) => {
    decodeBody(request, body as Buffer, true).then((raw) => done(null, raw), done)
  })
  app.addContentTypeParser('*', (request, _payload, done) => {
    const type = request.headers['content-type']
    done(
      spillwayError(
        'SPW_ERR_INTAKE_UNSUPPORTED_MEDIA_TYPE',
        `Content-Type ${type ? `"${type}"` : '(none)'} is not supported; send application/json` +
          (request.url.startsWith('/events/') ? ' or application/x-ndjson' : ''),
      ),
    )
  })
}

async function decodeBody(request: FastifyRequest, body: Buffer, ndjson: boolean): Promise<RawBody> {
  const limit = request.routeOptions.bodyLimit ?? body.length
  return { bytes: await inflate(body, request.headers['content-encoding'], limit), ndjson }
}

/**
 * The body as sent, or inflated when gzip'd, bounded by `limit` AFTER inflation (a gzip bomb is
 * cut off by zlib's maxOutputLength and answered 413); any other encoding is a 415.
 */
export async function inflate(
  body: Buffer,
  contentEncoding: string | undefined,
  limit: number,
): Promise<Buffer> {
  if (contentEncoding === undefined) return body
  const encoding = contentEncoding.trim().toLowerCase()
  if (encoding === 'identity' || encoding === '') return body
  if (encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw spillwayError(
      'SPW_ERR_INTAKE_UNSUPPORTED_ENCODING',
      `Content-Encoding "${encoding.slice(0, 100)}" is not supported; send gzip or identity`,
    )
  }
  try {
    return await gunzipAsync(body, { maxOutputLength: limit })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw spillwayError(
        'SPW_ERR_INTAKE_TOO_LARGE',
        `body is larger than ${limit} bytes after gzip inflation`,
      )
    }
    throw spillwayError('SPW_ERR_INTAKE_BAD_ENCODING', `body is not valid gzip: ${(error as Error).message}`)
  }
}

/**
 * JSON.parse with an error that says where, for a single-event body. The text is checked first,
 * as the batch routes check theirs: valid UTF-8 (a BOM is dropped) and no deeper than an event
 * with `maxDepth` levels in its metadata can be, so a pathological body is refused before
 * JSON.parse spends seconds and hundreds of MB building it.
 */
export function parseJsonBody(raw: RawBody, maxDepth = DEFAULT_MAX_DEPTH): unknown {
  if (raw.bytes.length === 0)
    throw spillwayError('SPW_ERR_INTAKE_BAD_JSON', 'body is empty; send one JSON event')
  const text = jsonText(raw.bytes)
  const tooDeep = nestingError(text, maxDepth + EVENT_LEVELS)
  if (tooDeep !== undefined) {
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      `body is ${tooDeep}, deeper than any valid event: metadata must be nested at most ${maxDepth} levels deep (maxDepth)`,
    )
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    throw spillwayError('SPW_ERR_INTAKE_BAD_JSON', `body is not valid JSON: ${(error as Error).message}`)
  }
}
