/**
 * JetStream publish answers → delivery verdict. Every event is one publish; the batch is
 * `delivered` only when every publish was acked (a `duplicate: true` ack means JetStream already
 * holds that `Nats-Msg-Id`: delivered too). Otherwise the worst answer decides:
 * - `retry` — anything that can get better by waiting or by an operator fixing a configuration,
 *   because acknowledged events must never become dead letters over it (G2, docs/ARCHITECTURE.md
 *   "Guarantees"): no ack in time, the
 *   connection lost or closed, no responders (no stream captures the subject, JetStream is
 *   disabled, restarting or electing a leader: the sink checks its stream again before the next
 *   attempt), a sealed or mismatched stream, wrong-sequence expectations, unknown API errors;
 *   with a longer pause (THROTTLE_MS) when the server says it is out of room: the stream is full
 *   under `discard: new` (10077 "maximum messages/bytes exceeded"), storage, memory or account
 *   resources exhausted (10047, 10028, 10002, 10023) — space comes back when limits are raised or
 *   consumers catch up, never by dropping events;
 * - `permanent` — only what the server refuses for the message itself, which would be refused
 *   again however long we wait: a message over the stream's `max_msg_size` (10054) and one over
 *   the server's `max_payload` (the client refuses to send it). Delivery halves the batch until
 *   the refused events stand alone and dead-letters them; the sink remembers what was acked, so
 *   the halves do not publish the rest again. Spillway's own `maxEventBytes` (64 KiB) is far
 *   below NATS's default `max_payload` (1 MiB): these only happen on servers configured tighter.
 * Any retry among the answers wins over a permanent one: the batch is tried again as a whole (the
 * acked part skipped), and only a batch whose sole failures are refusals is halved.
 */
import { spillwayError } from '../../errors.ts'
import type { Verdict } from '../sink.ts'
import { delivered } from '../sink.ts'

/** The answer to one publish. */
export type PublishAnswer =
  /** Stored (or already stored: `duplicate`) at `seq`. */
  | { readonly type: 'ack'; readonly stream: string; readonly seq: number; readonly duplicate: boolean }
  /** JetStream answered with an API error (`{"error":{"code","err_code","description"}}`). */
  | {
      readonly type: 'api-error'
      readonly status: number
      readonly errCode: number
      readonly description: string
    }
  /** A status message instead of an ack: 503 is "no responders". */
  | { readonly type: 'status'; readonly code: number; readonly description: string }
  /** No answer within the timeout. */
  | { readonly type: 'timeout'; readonly afterMs: number }
  /** The connection went away (or was closed) before the answer came. */
  | { readonly type: 'disconnected'; readonly reason: string }
  /** The client would not send it (an exception from publish): over `max_payload`, or a closed connection. */
  | { readonly type: 'thrown'; readonly error: Error }
  /** Not sent: the batch stopped at an earlier failure. */
  | { readonly type: 'unsent' }

/** Messages over the stream's `max_msg_size`. */
export const MESSAGE_TOO_LARGE = 10054

/** Out of room: retry after THROTTLE_MS. */
export const THROTTLE_CODES: ReadonlyMap<number, string> = new Map([
  [10077, 'stream store failed (full under discard new, or a storage error)'],
  [10047, 'insufficient storage resources'],
  [10028, 'insufficient memory resources'],
  [10002, 'account resource limits exceeded'],
  [10023, 'insufficient resources'],
])

/** How long a throttled publish waits before its next attempt (the backoff takes it as given). */
export const THROTTLE_MS = 2000

export type Judgement = 'delivered' | 'permanent' | 'retry' | 'throttle'

/** The decision for one answer, for the table test. */
export function judge(answer: PublishAnswer): Judgement {
  switch (answer.type) {
    case 'ack':
      return 'delivered'
    case 'api-error':
      if (answer.errCode === MESSAGE_TOO_LARGE) return 'permanent'
      return THROTTLE_CODES.has(answer.errCode) ? 'throttle' : 'retry'
    case 'thrown':
      return isOverMaxPayload(answer.error) ? 'permanent' : 'retry'
    default:
      return 'retry'
  }
}

/** The client's refusal of a message bigger than the server's `max_payload`. */
export function isOverMaxPayload(error: Error): boolean {
  return /max_payload/i.test(error.message)
}

/** A no-responders answer: the stream (or JetStream) is not there for the subject. */
export function isNoResponders(answer: PublishAnswer | undefined): boolean {
  return answer?.type === 'status' && answer.code === 503
}

/** One line for errors and dead-letter reasons. */
export function describe(answer: PublishAnswer): string {
  switch (answer.type) {
    case 'ack':
      return `acked at ${answer.stream}#${answer.seq}${answer.duplicate ? ' (duplicate)' : ''}`
    case 'api-error':
      return `${answer.description} (err_code ${answer.errCode}, ${answer.status})`
    case 'status':
      return answer.code === 503
        ? 'no responders: no stream captures the subject, or JetStream is not available'
        : `status ${answer.code} ${answer.description}`
    case 'timeout':
      return `no ack within ${answer.afterMs} ms`
    case 'disconnected':
      return answer.reason
    case 'thrown':
      return answer.error.message
    case 'unsent':
      return 'not sent after an earlier failure'
  }
}

export interface BatchAnswers {
  /** Event ids, in batch order. */
  readonly ids: readonly string[]
  /** The answer to each; undefined = skipped (acked by an earlier attempt). */
  readonly answers: readonly (PublishAnswer | undefined)[]
}

/** The batch's verdict: delivered when every answer is an ack (see the header). */
export function verdictFor(sink: string, where: string, batch: BatchAnswers): Verdict {
  let retry: { index: number; answer: PublishAnswer } | undefined
  let refused: { index: number; answer: PublishAnswer } | undefined
  let failed = 0
  let throttle = false
  const { answers, ids } = batch
  for (let i = 0; i < answers.length; i++) {
    const answer = answers[i]
    if (answer === undefined) continue
    const judgement = judge(answer)
    if (judgement === 'delivered') continue
    failed++
    if (judgement === 'permanent') refused ??= { index: i, answer }
    else {
      // The first failure that is not a mere consequence of another one names the cause.
      if (!retry || (retry.answer.type === 'unsent' && answer.type !== 'unsent')) retry = { index: i, answer }
      if (judgement === 'throttle') throttle = true
    }
  }
  if (failed === 0) return delivered
  if (retry) {
    return {
      kind: 'retry',
      error: spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `${sink}: ${failed} of ${answers.length} publishes to ${where} not acked; event ${JSON.stringify(ids[retry.index])}: ${describe(retry.answer)}`,
      ),
      ...(throttle && { afterMs: THROTTLE_MS }),
    }
  }
  return {
    kind: 'permanent',
    error: spillwayError(
      'SPW_ERR_SINK_REJECTED',
      `${sink}: ${where} refused event ${JSON.stringify(ids[refused!.index])}: ${describe(refused!.answer)}`,
    ),
  }
}
