/**
 * A store that lost what was delivered to it. DuckDB keeps its cursor inside its database, so a
 * database file deleted, replaced or restored from an old copy comes back with no cursor or an
 * older one, and delivery would start again at the oldest WAL segment still on disk. The events
 * between that cursor and the oldest segment were in segments already deleted — delivered to
 * that store, then swept — so they are gone from it for good, and nothing would say so.
 *
 * A new sink also starts at the oldest segment, rightly. To tell the two apart, the pipeline
 * records, before it deletes segments, which sinks they were delivered to (`SweptSinks`,
 * `<dataDir>/cursors/swept.json`). At start, a sink named there whose store holds a cursor below
 * the oldest segment on disk refuses the start — naming the sink, its store and the WAL range
 * that is gone — unless `acceptStoreLoss` is set; then it logs `DeliveryStoreLossAccepted` (warn)
 * with the same facts and delivers what the WAL still holds.
 *
 * Only sinks that keep their cursor in their store are checked: a lost cursor *file*
 * (cursor-file.ts) loses no events — they were delivered, and the sink is idempotent.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Config } from '../config/schema.ts'
import { spillwayError } from '../errors.ts'
import { writeFileDurably } from '../shared/durable-file.ts'
import type { Sink } from '../sinks/sink.ts'
import type { Logger } from '../telemetry/logger.ts'
import { listSegments } from '../wal/segment.ts'

interface SweptDocument {
  /** The sinks the deleted segments had been delivered to (the configured ones at the last sweep). */
  readonly sinks: readonly string[]
  readonly updatedAt: string
}

export interface StoreLoss {
  readonly sink: string
  /** The store file (DuckDB), or a description of the store. */
  readonly store: string
  /** The cursor the store holds; null when it holds none. */
  readonly storedCursor: number | null
  /** The WAL range [lostFrom, lostTo) that was delivered to the store and is deleted. */
  readonly lostFrom: number
  readonly lostTo: number
}

export function sweptSinksPath(dataDir: string): string {
  return join(dataDir, 'cursors', 'swept.json')
}

/** The record the pipeline keeps up to date before it deletes delivered segments. */
export class SweptSinks {
  readonly path: string
  #recorded: string | undefined
  #writing: Promise<void> = Promise.resolve()

  constructor(dataDir: string) {
    this.path = sweptSinksPath(dataDir)
  }

  /** Resolves once the record names exactly `sinks` (written at most once per change, and once per process). */
  note(sinks: readonly string[]): Promise<void> {
    const names = [...sinks].sort()
    const key = names.join(',')
    if (key === this.#recorded) return Promise.resolve()
    const write = this.#writing.then(async () => {
      if (key === this.#recorded) return
      await mkdir(dirname(this.path), { recursive: true })
      const doc: SweptDocument = { sinks: names, updatedAt: new Date().toISOString() }
      await writeFileDurably(this.path, `${JSON.stringify(doc)}\n`)
      this.#recorded = key
    })
    this.#writing = write.catch(() => {})
    return write
  }
}

/** The sinks named by the record; none when there is no record (no segment was ever deleted). */
export async function readSweptSinks(dataDir: string): Promise<string[]> {
  const path = sweptSinksPath(dataDir)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  try {
    const sinks = (JSON.parse(text) as Partial<SweptDocument>).sinks
    if (Array.isArray(sinks) && sinks.every((s) => typeof s === 'string')) return sinks
  } catch {}
  throw spillwayError(
    'SPW_ERR_WAL_CORRUPT',
    `${path} does not hold {"sinks": [names]}; delete it to skip this check once`,
  )
}

/** The stores (of `sinks`, open) that lost delivered events whose WAL segments are deleted. */
export async function findStoreLosses(config: Config, sinks: readonly Sink[]): Promise<StoreLoss[]> {
  const swept = new Set(await readSweptSinks(config.dataDir))
  if (swept.size === 0) return []
  const segments = await listSegments(join(config.dataDir, 'wal'))
  // No WAL at all: nothing to compare with (a data directory being rebuilt).
  if (segments.length === 0) return []
  const oldest = segments[0].start
  const losses: StoreLoss[] = []
  for (const sink of sinks) {
    if (!sink.loadCursor || !swept.has(sink.name)) continue
    const storedCursor = await sink.loadCursor()
    const from = storedCursor ?? 0
    if (from < oldest) {
      losses.push({
        sink: sink.name,
        store: storeOf(config, sink.name),
        storedCursor,
        lostFrom: from,
        lostTo: oldest,
      })
    }
  }
  return losses
}

/** Refuses the start on a store loss (SPW_ERR_SINK_STORE_LOST), or logs it when it is accepted. */
export async function checkStoreLoss(config: Config, sinks: readonly Sink[], logger: Logger): Promise<void> {
  const losses = await findStoreLosses(config, sinks)
  if (losses.length === 0) return
  if (config.acceptStoreLoss) {
    for (const loss of losses)
      logger.warn({ ...loss, lostBytes: loss.lostTo - loss.lostFrom }, 'DeliveryStoreLossAccepted')
    return
  }
  const resume = Math.max(...losses.map((l) => l.lostTo))
  throw spillwayError(
    'SPW_ERR_SINK_STORE_LOST',
    `${losses.map(describe).join('; ')}. Restore the store, or start with --accept-store-loss ` +
      `(SPILLWAY_ACCEPT_STORE_LOSS=true, config acceptStoreLoss) to accept the loss and deliver what the WAL ` +
      `still holds (from position ${resume})`,
  )
}

function describe(loss: StoreLoss): string {
  const holds =
    loss.storedCursor === null ? 'holds no cursor (new or emptied)' : `holds cursor ${loss.storedCursor}`
  return (
    `sink ${loss.sink}: its store ${loss.store} ${holds}, but WAL positions ${loss.lostFrom} to ${loss.lostTo} ` +
    `(${loss.lostTo - loss.lostFrom} bytes) were delivered to it and their segments deleted: the events there ` +
    'are missing from the store and cannot be delivered again'
  )
}

function storeOf(config: Config, sink: string): string {
  // The same default as the sink registry's.
  if (sink === 'duckdb') return config.duckdbPath || join(config.dataDir, 'spillway.duckdb')
  return `(the ${sink} store)`
}
