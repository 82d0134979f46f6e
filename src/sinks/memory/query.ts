/**
 * `GET /metrics` over a MemorySink, with the same semantics as the real stores: a duplicate
 * (same `event_id` and tenant) is counted once, `unique_users` is exact, hour/day groups are ISO-8601 UTC.
 */
import { dedupKeyOf } from '../../intake/event-id.ts'
import type { NormalizedEvent } from '../../intake/types.ts'
import type { GroupBy, MetricsQuery, MetricsRow, QueryBackend, Totals } from '../../query/types.ts'
import type { MemorySink } from './sink.ts'

export class MemoryQueryBackend implements QueryBackend {
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

  #matching(query: MetricsQuery): NormalizedEvent[] {
    const seen = new Set<string>()
    const out: NormalizedEvent[] = []
    for (const event of this.#sink.events) {
      const key = dedupKeyOf(event)
      if (seen.has(key)) continue
      seen.add(key)
      if (event.event_name !== query.event_name) continue
      if (query.from !== undefined && event.timestamp < query.from) continue
      if (query.to !== undefined && event.timestamp > query.to) continue
      out.push(event)
    }
    return out
  }
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
