/**
 * `spillway dlq replay`: re-submits dead-lettered events to a running server's
 * `POST /events/batch`, after the cause was fixed (a sink's schema, a limit, a clock).
 *
 * What is sent, one NDJSON line per dead-letter line:
 * - an event a sink refused (a NormalizedEvent from the WAL) goes back as an input event: the
 *   server-set `received_at` and `tenant` (the replay's API key gives it) are dropped, everything
 *   else — `event_id` included — is kept, so dedup
 *   recognises it and the sinks, keyed by `event_id`, store it once;
 * - an event refused at intake goes back exactly as the client sent it: a JSON value as that
 *   value (an object, or a string, number… which the server rejects again), and the raw text of an
 *   NDJSON line that was not JSON (a string, with the reason `line N is not valid JSON: …`) as
 *   that text.
 *   Such events only pass once the cause is gone (a limit raised, or the entry's `event` edited
 *   into a valid object); until then the server rejects them again. Requests go with
 *   `?dead_letter=false`, so the server does not write them again as new lines (the store would
 *   grow with every run): the ledger marks the line `invalid` with the new reason, and it stays
 *   pending for the next replay;
 * - an entry that cannot be one NDJSON line (the multi-line text of a WAL record that did not
 *   decode, or an event stored cut because it was nested too deep) is skipped and reported.
 *
 * Chunks hold at most 1000 events and about 1 MiB; a chunk answered 413 is halved until it fits,
 * and a lone event still too large is recorded as failed (it stays pending). A 503, 429, 5xx, an
 * auth error or an unreachable server stops the replay: what was sent so far is recorded, the
 * rest stays pending for the next run. With an API key (`--api-key`, `SPILLWAY_API_KEY`) every
 * request carries `Authorization: Bearer <key>`. After each answer the outcome of every line is written to
 * the ledger (dlq-ledger.ts) before the next chunk goes, so a second run sends only what the first
 * did not finish. A crash between the server's answer and the ledger write re-sends that one chunk
 * on the next run (at least once; the events keep their `event_id`, or get the same content-hash
 * id, so the duplicate is recognised).
 */
import { isUnparsedLineError } from '../intake/batch.ts'
import { type DeadLetterEntry, type StoredDeadLetter, scanDeadLetters } from '../shared/dead-letter.ts'
import { matchesSource, ReplayLedger, type ReplayRecord } from './dlq-ledger.ts'

export const MAX_CHUNK_EVENTS = 1000
export const DEFAULT_CHUNK_BYTES = 1024 * 1024

export interface ReplayOptions {
  /** `<dataDir>/deadletter` */
  readonly dir: string
  /** Base URL of the running server, e.g. http://127.0.0.1:8080 */
  readonly url: string
  /** Only entries of this source: `intake` or a sink name. */
  readonly source?: string
  /** Report what would be sent, send nothing, record nothing. */
  readonly dryRun?: boolean
  readonly chunkEvents?: number
  readonly chunkBytes?: number
  /** Sent as `Authorization: Bearer <key>` to a server that requires API keys. */
  readonly apiKey?: string
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>
  /** Seam for tests. */
  readonly fetch?: typeof fetch
}

export interface ReplayProblem {
  readonly id: string
  readonly reason: string
}

export interface ReplayReport {
  readonly url: string
  readonly dryRun: boolean
  /** Lines that were pending for this source when the replay started. */
  readonly pending: number
  /** Lines sent (in requests that got an answer per event). */
  readonly sent: number
  readonly requests: number
  /** Accepted again (new or duplicate). */
  readonly accepted: number
  /** Of the accepted, how many the server reported as duplicates. */
  readonly duplicates: number
  /** Rejected again, with the server's new reason; marked `invalid` in the ledger, still pending. */
  readonly rejected: readonly ReplayProblem[]
  /** Refused as a whole request (e.g. 413 for one event); they stay pending. */
  readonly failed: readonly ReplayProblem[]
  /** Entries that cannot be replayed as one NDJSON line; they stay pending. */
  readonly skipped: readonly ReplayProblem[]
  /** Why the replay stopped early, if it did; the unsent lines stay pending. */
  readonly stopped?: string
}

/** The NDJSON line that re-submits an entry, or why there is none. */
export function replayLine(entry: DeadLetterEntry): { line: string } | { skip: string } {
  if (entry.eventTruncated !== undefined) {
    return { skip: `the event was stored cut (${entry.eventTruncated}); it cannot be replayed as sent` }
  }
  const event = entry.event
  // Raw text: an NDJSON line that did not parse (intake), or a WAL record that did not decode
  // (delivery); any other string is a JSON string value the client sent as an event.
  const raw =
    typeof event === 'string' &&
    (entry.sink === undefined ? isUnparsedLineError(entry.reason) : !isJsonText(event))
  if (raw) {
    if (event.includes('\n') || event.trim().length === 0) {
      return {
        skip: 'the entry holds several lines of raw text (a WAL record that did not decode), not one event',
      }
    }
    return { line: event }
  }
  if (entry.sink !== undefined && isObject(event) && 'received_at' in event) {
    // The tenant too: it is the label of the API key the replay sends with, as for any request.
    const { received_at: _receivedAt, tenant: _tenant, ...input } = event
    return { line: JSON.stringify(input) }
  }
  const line = JSON.stringify(event === undefined ? null : event)
  return { line }
}

export async function replayDeadLetters(options: ReplayOptions): Promise<ReplayReport> {
  const dryRun = options.dryRun ?? false
  const ledger = await ReplayLedger.load(options.dir)
  if (!dryRun) await ledger.lock()
  try {
    // Read the ledger again under the lock: a replay that finished just before must count.
    const book = dryRun ? ledger : await ReplayLedger.load(options.dir)
    const pending = (await scanDeadLetters(options.dir)).filter(
      (stored) => !book.isDone(stored.id) && matchesSource(stored, options.source),
    )
    const run = new ReplayRun(options, ledger)
    const lines: Line[] = []
    for (const stored of pending) {
      const result = replayLine(stored.entry)
      if ('skip' in result) run.skipped.push({ id: stored.id, reason: result.skip })
      else lines.push({ stored, text: result.line, bytes: Buffer.byteLength(result.line) + 1 })
    }
    if (dryRun) {
      run.sent = lines.length
      return run.report(pending.length)
    }
    for (const chunk of chunks(lines, options)) {
      if (!(await run.send(chunk))) break
    }
    return run.report(pending.length)
  } finally {
    await ledger.close()
  }
}

interface Line {
  readonly stored: StoredDeadLetter
  readonly text: string
  readonly bytes: number
}

class ReplayRun {
  readonly #options: ReplayOptions
  readonly #ledger: ReplayLedger
  readonly #fetch: typeof fetch
  readonly #endpoint: string
  readonly #target: string
  sent = 0
  requests = 0
  accepted = 0
  duplicates = 0
  readonly rejected: ReplayProblem[] = []
  readonly failed: ReplayProblem[] = []
  readonly skipped: ReplayProblem[] = []
  stopped: string | undefined

  constructor(options: ReplayOptions, ledger: ReplayLedger) {
    this.#options = options
    this.#ledger = ledger
    this.#fetch = options.fetch ?? fetch
    this.#endpoint = `${options.url.replace(/\/+$/, '')}/events/batch`
    // The entries are in the store already: the server must not dead-letter them again.
    this.#target = `${this.#endpoint}?dead_letter=false`
  }

  /** Sends one chunk (halving it on 413); false when the replay must stop. */
  async send(chunk: readonly Line[]): Promise<boolean> {
    let status: number
    let body: unknown
    try {
      this.requests++
      const response = await this.#fetch(this.#target, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-ndjson',
          ...(this.#options.apiKey !== undefined && { authorization: `Bearer ${this.#options.apiKey}` }),
          ...this.#options.headers,
        },
        body: `${chunk.map((line) => line.text).join('\n')}\n`,
      })
      status = response.status
      const text = await response.text()
      try {
        body = JSON.parse(text)
      } catch {
        body = text
      }
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause
      this.stopped = `cannot reach ${this.#endpoint}: ${cause?.code ?? cause?.message ?? (error as Error).message}`
      return false
    }

    const rejectedList = isObject(body) && Array.isArray(body['rejected']) ? body['rejected'] : undefined
    if (rejectedList !== undefined && (status === 202 || status === 400)) {
      await this.#settle(chunk, rejectedList, body as Record<string, unknown>)
      return true
    }
    const reason = `HTTP ${status}: ${errorOf(body)}`
    if (status === 413 && chunk.length > 1) {
      const half = chunk.length >>> 1
      return (await this.send(chunk.slice(0, half))) && this.send(chunk.slice(half))
    }
    if (status === 413) {
      const record: ReplayRecord = { id: chunk[0].stored.id, at: Date.now(), outcome: 'failed', reason }
      await this.#ledger.record([record])
      this.failed.push({ id: record.id, reason })
      return true
    }
    const hint =
      status === 401
        ? this.#options.apiKey === undefined
          ? ' (the server requires an API key: pass --api-key or set SPILLWAY_API_KEY)'
          : ' (the server does not accept this API key)'
        : ''
    this.stopped = `the server answered ${reason}${hint}`
    return false
  }

  async #settle(chunk: readonly Line[], rejectedList: unknown[], body: Record<string, unknown>) {
    const reasons = new Map<number, string>()
    for (const item of rejectedList) {
      if (isObject(item) && typeof item['index'] === 'number') {
        reasons.set(item['index'], typeof item['error'] === 'string' ? item['error'] : 'rejected')
      }
    }
    const at = Date.now()
    const records: ReplayRecord[] = chunk.map((line, index) => {
      const reason = reasons.get(index)
      return reason === undefined
        ? { id: line.stored.id, at, outcome: 'accepted' }
        : { id: line.stored.id, at, outcome: 'invalid', reason }
    })
    await this.#ledger.record(records)
    this.sent += chunk.length
    for (const record of records) {
      if (record.outcome === 'accepted') this.accepted++
      else this.rejected.push({ id: record.id, reason: record.reason ?? 'rejected' })
    }
    if (typeof body['duplicates'] === 'number') this.duplicates += body['duplicates']
  }

  report(pending: number): ReplayReport {
    return {
      url: this.#options.url,
      dryRun: this.#options.dryRun ?? false,
      pending,
      sent: this.sent,
      requests: this.requests,
      accepted: this.accepted,
      duplicates: this.duplicates,
      rejected: this.rejected,
      failed: this.failed,
      skipped: this.skipped,
      ...(this.stopped !== undefined && { stopped: this.stopped }),
    }
  }
}

/** Consecutive runs of at most `chunkEvents` lines and about `chunkBytes` bytes (a bigger line goes alone). */
function* chunks(lines: readonly Line[], options: ReplayOptions): Generator<Line[]> {
  const maxEvents = Math.max(1, Math.min(MAX_CHUNK_EVENTS, options.chunkEvents ?? MAX_CHUNK_EVENTS))
  const maxBytes = Math.max(1, options.chunkBytes ?? DEFAULT_CHUNK_BYTES)
  let chunk: Line[] = []
  let bytes = 0
  for (const line of lines) {
    if (chunk.length > 0 && (chunk.length >= maxEvents || bytes + line.bytes > maxBytes)) {
      yield chunk
      chunk = []
      bytes = 0
    }
    chunk.push(line)
    bytes += line.bytes
  }
  if (chunk.length > 0) yield chunk
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function errorOf(body: unknown): string {
  if (isObject(body) && typeof body['error'] === 'string') return body['error']
  const text = typeof body === 'string' ? body : JSON.stringify(body)
  return text.length > 200 ? `${text.slice(0, 199)}…` : text
}
