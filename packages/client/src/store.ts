/**
 * The contract of a durable queue (the Node file queue is one): the client appends every event
 * before `track()` resolves and removes it once it has a fate (stored, refused or dropped).
 * Whatever was appended and not removed comes back as `recovered` at the next start.
 */

export interface StoredEvent {
  readonly id: string
  /** The event's JSON line, without `sent_at`. */
  readonly line: string
}

export interface EventStore {
  /** Events a previous run appended and never removed, oldest first. */
  readonly recovered: readonly StoredEvent[]
  /** Resolves once the events are durable; rejects when they could not be written. */
  append(events: readonly StoredEvent[]): Promise<void>
  /** Forget these events; need not be durable at once (a replayed event is a server-side duplicate). */
  remove(ids: readonly string[]): void
  close(): Promise<void>
}
