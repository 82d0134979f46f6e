/** @spillway/client: the browser-safe entry (Node too); the durable file queue is in `./node.ts`. */
export { type ClientStats, SpillwayClient, type TrackResult } from './client.ts'
export {
  CLIENT_ERRORS,
  type ClientErrorCode,
  type EventFailure,
  SpillwayClientError,
} from './errors.ts'
export type { BatchResult, ClientOptions, Overflow, RetryInfo, UnloadTransport } from './options.ts'
export type { EventStore, StoredEvent } from './store.ts'
export { uuidv7 } from './uuid.ts'
export { CHANNELS, type Channel, DEFAULT_LIMITS, type EventLimits, type TrackEvent } from './validate.ts'
