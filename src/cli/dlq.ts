/**
 * `spillway dlq list|replay|purge`: the dead-letter store from the command line.
 *
 *   dlq list   [--data-dir D] [--sink S] [--limit N] [--all] [--json]
 *     Pending entries, NEWEST FIRST (time, source — `intake` or the sink —, index, reason, event),
 *     then how many there are per reason. `--sink intake` or `--sink <name>` keeps one source,
 *     `--limit` bounds the lines shown (the counts cover all), `--all` adds the lines already
 *     replayed, with their outcome.
 *   dlq replay [--data-dir D] [--url http://127.0.0.1:<httpPort>] [--sink S] [--dry-run]
 *              [--chunk-events N] [--api-key K] [--json]
 *     Re-submits the pending entries, oldest first, to a running server (see
 *     delivery/dlq-replay.ts), with `Authorization: Bearer` from --api-key or SPILLWAY_API_KEY.
 *     Exit 0 when everything sent was accepted, 1 when some were rejected again, failed or the
 *     replay stopped early.
 *   dlq purge  [--data-dir D] (--reason TEXT | --sink S | --before TIME | --replayed)… | --all
 *              [--dry-run] [--json]            (`dlq drop` is the same command)
 *     Removes the entries every given filter matches (or every entry with --all) and frees their
 *     bytes, safely while servers append (see dropDeadLetters in shared/dead-letter.ts).
 *     --reason matches part of the reason, --before a time (ISO-8601 or Unix seconds), --replayed
 *     the entries a replay got accepted.
 */
import { join } from 'node:path'
import type { Config } from '../config/schema.ts'
import {
  type DeadLetterState,
  deadLetterStates,
  matchesSource,
  ReplayLedger,
} from '../delivery/dlq-ledger.ts'
import { type ReplayReport, replayDeadLetters } from '../delivery/dlq-replay.ts'
import {
  type DeadLetterUsage,
  type DropReport,
  deadLetterUsage,
  dropDeadLetters,
  type StoredDeadLetter,
} from '../shared/dead-letter.ts'

/** Flags of the dlq commands; the others go to the configuration (e.g. --data-dir, --config). */
export const DLQ_FLAGS = [
  'sink',
  'limit',
  'all',
  'url',
  'dry-run',
  'chunk-events',
  'api-key',
  'reason',
  'before',
  'replayed',
] as const

/** The API key `dlq replay` sends when --api-key is not given. */
export const API_KEY_ENV = 'SPILLWAY_API_KEY'

export interface DlqListing {
  readonly dir: string
  readonly order: 'newest first'
  /** Entries matching the filter (pending only, unless --all). */
  readonly total: number
  readonly shown: number
  /** Lines of this source already replayed (not counted in total unless --all). */
  readonly replayed: number
  readonly byReason: readonly { readonly reason: string; readonly count: number }[]
  readonly entries: readonly ListedEntry[]
}

export interface ListedEntry {
  readonly id: string
  readonly time: string
  readonly source: string
  readonly index?: number
  readonly position?: number
  readonly reason: string
  readonly event: unknown
  readonly replay?: DeadLetterState['replay']
}

export async function listDlq(config: Config, flags: Readonly<Record<string, string>>): Promise<DlqListing> {
  const dir = join(config.dataDir, 'deadletter')
  const limit = flags['limit'] === undefined ? Number.POSITIVE_INFINITY : positiveInt('limit', flags['limit'])
  const all = flags['all'] === 'true'
  const states = (await deadLetterStates(dir)).filter((s) => matchesSource(s, flags['sink']))
  const selected = states.filter((s) => all || s.pending)
  // Newest first: by time, then by file and line backwards (later lines were written later).
  selected.sort(
    (a, b) => b.entry.at - a.entry.at || (a.file < b.file ? 1 : a.file > b.file ? -1 : 0) || b.line - a.line,
  )
  const counts = new Map<string, number>()
  for (const s of selected) counts.set(s.entry.reason, (counts.get(s.entry.reason) ?? 0) + 1)
  const entries = selected.slice(0, limit).map(
    (s): ListedEntry => ({
      id: s.id,
      time: isoTime(s.entry.at),
      source: s.entry.sink ?? 'intake',
      ...(s.entry.index !== undefined && { index: s.entry.index }),
      ...(s.entry.position !== undefined && { position: s.entry.position }),
      reason: s.entry.reason,
      event: s.entry.event,
      ...(s.replay && { replay: s.replay }),
    }),
  )
  return {
    dir,
    order: 'newest first',
    total: selected.length,
    shown: entries.length,
    replayed: states.filter((s) => !s.pending).length,
    byReason: [...counts]
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1)),
    entries,
  }
}

export function formatListing(listing: DlqListing): string {
  const out: string[] = []
  const replayed = listing.replayed > 0 ? `; ${listing.replayed} already replayed` : ''
  out.push(
    `${listing.dir}: ${listing.total} entr${listing.total === 1 ? 'y' : 'ies'}${replayed}` +
      (listing.total > 0 ? `, ${listing.shown} shown, newest first` : ''),
  )
  for (const e of listing.entries) {
    const where = e.index !== undefined ? `#${e.index}` : e.position !== undefined ? `@${e.position}` : '-'
    const replay = e.replay
      ? ` [replay ${e.replay.outcome}${e.replay.reason ? `: ${e.replay.reason}` : ''}]`
      : ''
    out.push(
      `${e.time}  ${e.source.padEnd(8)} ${where.padEnd(6)} ${e.reason}${replay}\n    ${clip(showEvent(e.event), 160)}`,
    )
  }
  if (listing.byReason.length > 0) {
    out.push('by reason:')
    for (const { reason, count } of listing.byReason) out.push(`${String(count).padStart(8)}  ${reason}`)
  }
  return `${out.join('\n')}\n`
}

export async function replayDlq(
  config: Config,
  flags: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ReplayReport> {
  const url = flags['url'] ?? `http://127.0.0.1:${config.httpPort}`
  const apiKey = apiKeyOf(flags, env)
  return replayDeadLetters({
    dir: join(config.dataDir, 'deadletter'),
    url,
    ...(apiKey !== undefined && { apiKey }),
    ...(flags['sink'] !== undefined && { source: flags['sink'] }),
    dryRun: flags['dry-run'] === 'true',
    ...(flags['chunk-events'] !== undefined && {
      chunkEvents: positiveInt('chunk-events', flags['chunk-events']),
    }),
  })
}

export function formatReplay(report: ReplayReport): string {
  const out: string[] = []
  if (report.dryRun) {
    out.push(
      `dry run: ${report.sent} of ${report.pending} pending entries would be sent to ${report.url}/events/batch`,
    )
  } else {
    out.push(
      `replayed ${report.sent} of ${report.pending} pending entries to ${report.url}/events/batch in ${report.requests} request${report.requests === 1 ? '' : 's'}: ` +
        `${report.accepted} accepted (${report.duplicates} duplicates), ${report.rejected.length} rejected again, ${report.failed.length} failed`,
    )
  }
  const section = (title: string, items: readonly { id: string; reason: string }[]) => {
    if (items.length === 0) return
    out.push(`${title}:`)
    for (const item of items.slice(0, 50)) out.push(`  ${item.id}  ${item.reason}`)
    if (items.length > 50) out.push(`  … and ${items.length - 50} more (use --json)`)
  }
  section('rejected again (kept here once, marked with the new reason; still pending)', report.rejected)
  section('failed (still pending)', report.failed)
  section('skipped (cannot be replayed as one event; still pending)', report.skipped)
  if (report.stopped) out.push(`stopped early: ${report.stopped}; the rest is still pending, run again later`)
  return `${out.join('\n')}\n`
}

export function replayExitCode(report: ReplayReport): number {
  if (report.dryRun) return 0
  return report.rejected.length === 0 && report.failed.length === 0 && report.stopped === undefined ? 0 : 1
}

export interface DlqPurge extends DropReport {
  readonly dir: string
  /** What the store holds afterwards. */
  readonly left: DeadLetterUsage
}

export async function purgeDlq(config: Config, flags: Readonly<Record<string, string>>): Promise<DlqPurge> {
  const dir = join(config.dataDir, 'deadletter')
  const tests: ((stored: StoredDeadLetter) => boolean)[] = []
  const reason = flags['reason']
  if (reason !== undefined) {
    if (reason === 'true' || reason === '')
      throw new Error('--reason needs the text to look for in the reason')
    tests.push((s) => typeof s.entry.reason === 'string' && s.entry.reason.includes(reason))
  }
  const sink = flags['sink']
  if (sink !== undefined) tests.push((s) => matchesSource(s, sink))
  if (flags['before'] !== undefined) {
    const before = timeOf('before', flags['before'])
    tests.push((s) => typeof s.entry.at === 'number' && s.entry.at < before)
  }
  if (flags['replayed'] === 'true') {
    const ledger = await ReplayLedger.load(dir)
    tests.push((s) => ledger.isDone(s.id))
  }
  if (tests.length === 0 && flags['all'] !== 'true') {
    throw new Error(
      'dlq purge needs a filter (--reason TEXT, --sink S, --before TIME, --replayed) or --all to drop every entry',
    )
  }
  const report = await dropDeadLetters(dir, (stored) => tests.every((matches) => matches(stored)), {
    dryRun: flags['dry-run'] === 'true',
  })
  return { dir, ...report, left: await deadLetterUsage(dir) }
}

export function formatPurge(purge: DlqPurge): string {
  const what = `${purge.entries} entr${purge.entries === 1 ? 'y' : 'ies'} (${purge.bytes} bytes, ${purge.filesRemoved} file${purge.filesRemoved === 1 ? '' : 's'} removed)`
  const left = `${purge.left.entries} entr${purge.left.entries === 1 ? 'y' : 'ies'}, ${purge.left.bytes} bytes`
  return purge.dryRun
    ? `dry run: would drop ${what} from ${purge.dir}; it holds ${left}\n`
    : `dropped ${what} from ${purge.dir}; it now holds ${left}\n`
}

function apiKeyOf(
  flags: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const flag = flags['api-key']
  if (flag === 'true' || flag === '') throw new Error('--api-key needs the key as its value')
  const key = flag ?? env[API_KEY_ENV]
  return key === undefined || key.trim() === '' ? undefined : key.trim()
}

/** An ISO-8601 time or Unix seconds, as Unix milliseconds. */
function timeOf(flag: string, value: string): number {
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value)
  if (!Number.isFinite(ms))
    throw new Error(
      `--${flag} must be an ISO-8601 time (2026-12-01T00:00:00Z) or Unix seconds, got "${value}"`,
    )
  return ms
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${flag} must be a positive integer, got "${value}"`)
  return n
}

function isoTime(at: unknown): string {
  return typeof at === 'number' && Number.isFinite(at) ? new Date(at).toISOString() : String(at)
}

function showEvent(event: unknown): string {
  return typeof event === 'string' ? `(text) ${JSON.stringify(event)}` : (JSON.stringify(event) ?? 'null')
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
