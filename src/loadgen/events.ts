/**
 * The requests `spillway load` sends: realistic events (names, users, campaigns, channels, tags,
 * metadata), each with a fresh `event_id` unless it is one of the planned duplicates — an exact
 * copy of an event sent shortly before, as a client retry would send it.
 *
 * A request is serialised once, head and body, into the bytes written to the socket: the request
 * line and the headers that never change are built at the start, so each request costs one
 * template string for the event, its Content-Length and one write.
 */
import { randomUUID } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { INPUT_FIELDS, type InputFieldName, type RequiredFieldName } from '../event/fields.ts'
import type { PayloadPlan } from './types.ts'

export interface PreparedRequest {
  /** The whole request: head and body. */
  readonly bytes: string | Buffer
  readonly events: number
  readonly duplicates: number
}

/** Recently sent events, for duplicates: the last RECENT serialised events. */
const RECENT = 1024

export class RequestFactory {
  readonly #plan: PayloadPlan
  readonly #head: string
  readonly #random: () => number
  readonly #recent: string[] = []
  #recentNext = 0
  #nameQuoted: string[]
  #channelQuoted: string[]
  /** The event's fields in the field table's order, each `,"name":` (the first `{"name":`) and its value's writer. */
  readonly #fields: readonly (readonly [key: string, write: FieldWriter])[]

  constructor(
    url: URL,
    plan: PayloadPlan,
    headers: Readonly<Record<string, string>> = {},
    seed = Date.now(),
  ) {
    if (plan.eventNames.length === 0) throw new RangeError('at least one event name is needed')
    if (plan.channels.length === 0) throw new RangeError('at least one channel is needed')
    this.#plan = plan
    this.#random = mulberry32(seed)
    this.#nameQuoted = plan.eventNames.map((n) => JSON.stringify(n))
    this.#channelQuoted = plan.channels.map((c) => JSON.stringify(c))
    const written = INPUT_FIELDS.filter((name) => FIELD_WRITERS[name] !== undefined)
    this.#fields = written.map((name, i) => [
      `${i === 0 ? '{' : ','}"${name}":`,
      FIELD_WRITERS[name] as FieldWriter,
    ])
    const lines = [
      `POST ${url.pathname}${url.search} HTTP/1.1`,
      `Host: ${url.host}`,
      `Content-Type: ${plan.batch > 0 ? 'application/x-ndjson' : 'application/json'}`,
      ...(plan.gzip ? ['Content-Encoding: gzip'] : []),
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ]
    for (const line of lines) {
      if (/[\r\n]/.test(line))
        throw new RangeError(`a header may not contain a line break: ${JSON.stringify(line)}`)
    }
    this.#head = `${lines.join('\r\n')}\r\nContent-Length: `
  }

  /** The next request: one event, or an NDJSON batch of `plan.batch`. */
  next(): PreparedRequest {
    const count = this.#plan.batch > 0 ? this.#plan.batch : 1
    let body = ''
    let duplicates = 0
    for (let i = 0; i < count; i++) {
      const event = this.#event()
      if (event.duplicate) duplicates++
      body = i === 0 ? event.json : `${body}\n${event.json}`
    }
    if (this.#plan.gzip) {
      const compressed = gzipSync(body, { level: 1 })
      const head = Buffer.from(`${this.#head}${compressed.length}\r\n\r\n`, 'latin1')
      return { bytes: Buffer.concat([head, compressed]), events: count, duplicates }
    }
    return { bytes: `${this.#head}${Buffer.byteLength(body)}\r\n\r\n${body}`, events: count, duplicates }
  }

  /** Builds an event as `next` would, without sending it or remembering it: a JIT warm-up. */
  warm(): string {
    const saved = this.#recent.length
    const json = this.#event().json
    if (this.#recent.length > saved) this.#recent.pop()
    else this.#recentNext = (this.#recentNext + RECENT - 1) % RECENT
    return json
  }

  #event(): { json: string; duplicate: boolean } {
    const r = this.#random
    if (this.#recent.length > 0 && r() < this.#plan.duplicateRatio) {
      return { json: this.#recent[Math.floor(r() * this.#recent.length)], duplicate: true }
    }
    const draw: Draw = {
      random: r,
      plan: this.#plan,
      names: this.#nameQuoted,
      channels: this.#channelQuoted,
      product: Math.floor(r() * 1000),
    }
    let json = ''
    for (const [key, write] of this.#fields) json += key + write(draw)
    json += '}'
    if (this.#recent.length < RECENT) this.#recent.push(json)
    else this.#recent[this.#recentNext] = json
    this.#recentNext = (this.#recentNext + 1) % RECENT
    return { json, duplicate: false }
  }
}

interface Draw {
  readonly random: () => number
  readonly plan: PayloadPlan
  readonly names: readonly string[]
  readonly channels: readonly string[]
  /** The product this event is about (its tags and metadata agree). */
  readonly product: number
}
/** The JSON text of one field's value. */
type FieldWriter = (draw: Draw) => string

/**
 * A writer per field of the table (src/event/fields.ts): a required field the table gains and
 * this map lacks fails type-checking; optional ones are sent when they have a writer (`sent_at`
 * has none: the generator sends no clock skew).
 */
const FIELD_WRITERS: Record<RequiredFieldName, FieldWriter> & Partial<Record<InputFieldName, FieldWriter>> = {
  event_id: () => `"${randomUUID()}"`,
  event_name: (d) => d.names[Math.floor(d.random() * d.names.length)],
  channel: (d) => d.channels[Math.floor(d.random() * d.channels.length)],
  campaign_id: (d) => `"cmp_${Math.floor(d.random() * d.plan.campaigns)}"`,
  user_id: (d) => `"user_${Math.floor(d.random() * d.plan.users)}"`,
  timestamp: () => String(Math.floor(Date.now() / 1000)),
  tags: (d) => TAGS[d.product % TAGS.length],
  metadata: (d) => `{"product_id":"prod-${d.product}","price":${(d.product % 500) + 0.99}}`,
}

const TAGS = [
  '["electronics","homepage"]',
  '["sale"]',
  '[]',
  '["books","recommended","email"]',
  '["fashion"]',
]

/** A small, fast, seedable PRNG: the same seed sends the same names, users and duplicates. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The endpoint a plan posts to: `/events` or `/events/batch` when the URL names no path. */
export function targetUrl(url: string, batch: number): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new RangeError(`--url "${url}" is not a URL; write e.g. http://127.0.0.1:8080`)
  }
  if (parsed.protocol !== 'http:') {
    throw new RangeError(
      `--url must be http:// (the generator speaks plain HTTP/1.1), got ${parsed.protocol}`,
    )
  }
  if (parsed.pathname === '/' || parsed.pathname === '')
    parsed.pathname = batch > 0 ? '/events/batch' : '/events'
  return parsed
}
