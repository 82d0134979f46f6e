/**
 * `GET /metrics` over a MemorySink, with the same semantics as the real stores: a duplicate
 * (same `event_id` and tenant) is counted once, `unique_users` is exact, hour/day groups are ISO-8601 UTC.
 */
import { dedupKeyOf } from '../../intake/event-id.ts'
import type { NormalizedEvent } from '../../intake/types.ts'
import {
  BUCKET_SECONDS,
  boundedSeries,
  checkSeries,
  checkTopEvents,
  isoSeconds,
} from '../../query/explore.ts'
import type {
  ExploreBackend,
  GroupBy,
  MetricsQuery,
  MetricsRow,
  QueryBackend,
  SeriesQuery,
  SeriesRow,
  TopEventsQuery,
  TopEventsRow,
  Totals,
} from '../../query/types.ts'
import type { MemorySink } from './sink.ts'

export class MemoryQueryBackend implements QueryBackend, ExploreBackend {
  readonly #sink: MemorySink

  constructor(sink: MemorySink) {
    this.#sink = sink
  }

  async totals(query: MetricsQuery): Promise<Totals> {
    return count(this.#matching(query))
  }

  async groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]> {
    const groups = new Map<string, NormalizedEvent[]>()
    for (const event of this.#matching(query)) {
      const key = groupOf(event, query.group_by)
      const list = groups.get(key)
      if (list) list.push(event)
      else groups.set(key, [event])
    }
    return [...groups.keys()].sort().map((group) => ({ group, ...count(groups.get(group)!) }))
  }

  async topEvents(query: TopEventsQuery): Promise<TopEventsRow[]> {
    checkTopEvents(query)
    const names = new Map<string, NormalizedEvent[]>()
    for (const event of this.#matching(query)) {
      const list = names.get(event.event_name)
      if (list) list.push(event)
      else names.set(event.event_name, [event])
    }
    return [...names]
      .map(([event_name, events]) => ({ event_name, ...count(events) }))
      .sort((a, b) => b.total_events - a.total_events || compare(a.event_name, b.event_name))
      .slice(0, query.limit)
  }

  async series(query: SeriesQuery): Promise<SeriesRow[]> {
    checkSeries(query)
    const unit = BUCKET_SECONDS[query.bucket]
    const cells = new Map<string, { start: number; channel: string; events: NormalizedEvent[] }>()
    for (const event of this.#matching(query)) {
      const start = Math.floor(event.timestamp / unit) * unit
      const key = `${start}\t${event.channel}`
      const cell = cells.get(key)
      if (cell) cell.events.push(event)
      else cells.set(key, { start, channel: event.channel, events: [event] })
    }
    const rows = [...cells.values()]
      .sort((a, b) => a.start - b.start || compare(a.channel, b.channel))
      .map(({ start, channel, events }) => ({ time: isoSeconds(start), channel, ...count(events) }))
    return boundedSeries(rows, query)
  }

  /** Each stored event once (by dedup key), of `event_name` when given, inside from…to. */
  #matching(query: {
    readonly event_name?: string
    readonly from?: number
    readonly to?: number
  }): NormalizedEvent[] {
    const seen = new Set<string>()
    const out: NormalizedEvent[] = []
    for (const event of this.#sink.events) {
      const key = dedupKeyOf(event)
      if (seen.has(key)) continue
      seen.add(key)
      if (query.event_name !== undefined && event.event_name !== query.event_name) continue
      if (query.from !== undefined && event.timestamp < query.from) continue
      if (query.to !== undefined && event.timestamp > query.to) continue
      out.push(event)
    }
    return out
  }
}

/** Code-unit order, as the stores' byte order of UTF-8 keeps ASCII names. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function count(events: readonly NormalizedEvent[]): Totals {
  return { total_events: events.length, unique_users: new Set(events.map((e) => e.user_id)).size }
}

function groupOf(event: NormalizedEvent, by: GroupBy): string {
  if (by === 'channel') return event.channel
  const unit = by === 'hour' ? 3600 : 86400
  const start = Math.floor(event.timestamp / unit) * unit
  return new Date(start * 1000).toISOString().replace('.000Z', 'Z')
}
