/**
 * Messages between the HTTP thread (DeliveryHost) and the delivery thread (worker.ts).
 *
 * Start: workerData is `DeliveryWorkerData`. The worker opens every sink, publishes every cursor
 * in the shared state, then posts `started` (or `startFailed` and exits).
 * Requests: the host posts `{ type: 'call', id, method, args }`; the worker answers once with
 * `{ type: 'reply', id, ok, value | error }`. Ids are unique per worker incarnation.
 * Stop: `{ type: 'stop', id, drain }`; the worker replies when every loop stopped and every sink
 * closed, then exits. A second stop without drain cuts a drain short.
 * Errors cross as plain data (`SerializedError`) and are revived on the other side.
 */
import type { Config } from '../config/schema.ts'
import { ERRORS, type ErrorCode, isSpillwayError, SpillwayError, spillwayError } from '../errors.ts'
import type { GroupBy, MetricsQuery, SeriesQuery, TopEventsQuery } from '../query/types.ts'

export interface DeliveryWorkerData {
  readonly config: Config
  /** `WalSharedState.buffer` of the HTTP thread. */
  readonly stateBuffer: SharedArrayBuffer
  readonly maxRecordBytes: number
}

export interface SerializedError {
  readonly name: string
  readonly message: string
  readonly code?: string
  readonly stack?: string
}

export type CallRequest =
  | { readonly type: 'call'; readonly id: number; readonly method: 'totals'; readonly args: MetricsQuery }
  | {
      readonly type: 'call'
      readonly id: number
      readonly method: 'groups'
      readonly args: MetricsQuery & { readonly group_by: GroupBy }
    }
  | {
      readonly type: 'call'
      readonly id: number
      readonly method: 'topEvents'
      readonly args: TopEventsQuery
    }
  | { readonly type: 'call'; readonly id: number; readonly method: 'series'; readonly args: SeriesQuery }
  | {
      readonly type: 'call'
      readonly id: number
      readonly method: 'ready'
      readonly args: { readonly timeoutMs: number }
    }
  | { readonly type: 'call'; readonly id: number; readonly method: 'stats'; readonly args: null }

export type HostMessage =
  | CallRequest
  | { readonly type: 'stop'; readonly id: number; readonly drain: boolean }

export type WorkerMessage =
  | { readonly type: 'started'; readonly cursors: Record<string, number> }
  | { readonly type: 'startFailed'; readonly error: SerializedError }
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: SerializedError }

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      code: isSpillwayError(error) ? error.code : undefined,
      stack: error.stack,
    }
  }
  return { name: 'Error', message: String(error) }
}

/** A SpillwayError again when the code is in the catalogue, else a plain Error. */
export function reviveError(data: SerializedError): Error {
  const error =
    data.code && data.code in ERRORS
      ? spillwayError(data.code as ErrorCode, data.message)
      : Object.assign(new Error(data.message), { name: data.name })
  if (data.stack) error.stack = data.stack
  return error
}

export function isSpillwayCode(error: Error, prefix: string): error is SpillwayError {
  return error instanceof SpillwayError && error.code.startsWith(prefix)
}
