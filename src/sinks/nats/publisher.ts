/**
 * Windowed asynchronous JetStream publishing, the way nats.go's `PublishAsync` does it: each
 * message goes out as a plain publish with a reply subject under one inbox of the publisher's
 * own (`<inbox>.<write>.<index>`), a single wildcard subscription receives every ack, and at most
 * `window` publishes are unanswered at a time — the next one leaves as soon as any ack comes
 * back. The client's own `js.publish()` is a request per message (a timer and a promise each): on
 * this machine it tops out near 30k msg/s where this reaches 70–80k (bench/nats.ts measures both).
 *
 * A write stops sending at the first failure that is worth retrying (there is no point in
 * queueing more behind it) and waits for the publishes already out, so the answers say exactly
 * what JetStream acked; it gives up waiting when no ack arrived for `timeoutMs` (the rest count
 * as timed out) or when the connection drops (`interrupt`). Late acks of an abandoned write are
 * ignored: the caller retries, and JetStream's duplicate window drops the copies.
 */
import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node'
import type { PublishAnswer } from './verdict.ts'
import { judge } from './verdict.ts'

export interface PublishItem {
  /** The event_id (for errors and the caller's bookkeeping). */
  readonly id: string
  /** `Nats-Msg-Id`: JetStream drops a second message with the same id inside its duplicate window. */
  readonly msgId: string
  readonly data: Uint8Array
}

interface Write {
  readonly id: number
  readonly answers: (PublishAnswer | undefined)[]
  /** Per item: NOT_SENT, SENT or SKIPPED. */
  readonly state: Uint8Array
  inflight: number
  /** No more publishes: a failure worth retrying came back, or the write was interrupted. */
  stopped: boolean
  /** Set when waiting is pointless (no ack for timeoutMs, connection lost): the answer of every unanswered publish. */
  interruptedBy: PublishAnswer | null
  lastProgress: number
  wake: (() => void) | null
}

const NOT_SENT = 0
const SENT = 1
const SKIPPED = 2

const UNSENT: PublishAnswer = Object.freeze({ type: 'unsent' })

export class JetStreamPublisher {
  readonly #nc: NatsConnection
  readonly #inbox: string
  readonly #subscription: Subscription
  #write: Write | null = null
  #writes = 0

  constructor(nc: NatsConnection) {
    this.#nc = nc
    this.#inbox = createInbox()
    this.#subscription = nc.subscribe(`${this.#inbox}.>`, {
      callback: (error, msg) => {
        if (!error) this.#onReply(msg)
      },
    })
  }

  /**
   * Publishes `items[i]` to `subject` for every i that `skip` does not exclude; resolves with each
   * one's answer (undefined for the skipped ones). Never rejects. One write at a time.
   */
  async publish(
    subject: string,
    items: readonly PublishItem[],
    options: {
      readonly window: number
      readonly timeoutMs: number
      readonly skip?: (index: number) => boolean
    },
  ): Promise<(PublishAnswer | undefined)[]> {
    if (this.#write) throw new Error('JetStreamPublisher.publish: one write at a time')
    const write: Write = {
      id: ++this.#writes,
      answers: new Array(items.length),
      state: new Uint8Array(items.length),
      inflight: 0,
      stopped: false,
      interruptedBy: null,
      lastProgress: performance.now(),
      wake: null,
    }
    this.#write = write
    const { window, timeoutMs, skip } = options
    const prefix = `${this.#inbox}.${write.id}.`
    const timer = setInterval(
      () => {
        if (write.inflight > 0 && performance.now() - write.lastProgress >= timeoutMs) {
          this.#stop(write, { type: 'timeout', afterMs: timeoutMs })
        }
      },
      Math.max(10, Math.min(1000, timeoutMs / 4)),
    )
    try {
      for (let i = 0; i < items.length && !write.stopped; i++) {
        if (skip?.(i)) {
          write.state[i] = SKIPPED
          continue
        }
        try {
          const h = headers()
          h.set('Nats-Msg-Id', items[i].msgId)
          this.#nc.publish(subject, items[i].data, { reply: prefix + i, headers: h })
        } catch (error) {
          const answer: PublishAnswer = { type: 'thrown', error: asError(error) }
          write.answers[i] = answer
          // A message over max_payload is refused alone; a closed connection stops the write.
          if (judge(answer) !== 'permanent') write.stopped = true
          continue
        }
        write.state[i] = SENT
        write.inflight++
        if (write.inflight === 1) write.lastProgress = performance.now()
        while (write.inflight >= window && !write.stopped) await next(write)
      }
      while (write.inflight > 0 && !write.interruptedBy) await next(write)
    } finally {
      clearInterval(timer)
      this.#write = null
    }
    for (let i = 0; i < items.length; i++) {
      if (write.answers[i] !== undefined || write.state[i] === SKIPPED) continue
      write.answers[i] = write.state[i] === NOT_SENT ? UNSENT : write.interruptedBy!
    }
    return write.answers
  }

  /** Fails the write in progress (the connection dropped): its unanswered publishes count as `answer`. */
  interrupt(reason: string): void {
    if (this.#write) this.#stop(this.#write, { type: 'disconnected', reason })
  }

  close(): void {
    this.interrupt('publisher closed')
    this.#subscription.unsubscribe()
  }

  #stop(write: Write, answer: PublishAnswer): void {
    write.stopped = true
    write.interruptedBy ??= answer
    wakeUp(write)
  }

  #onReply(msg: Msg): void {
    const write = this.#write
    if (!write) return
    const rest = msg.subject.slice(this.#inbox.length + 1)
    const dot = rest.indexOf('.')
    if (Number(rest.slice(0, dot)) !== write.id) return
    const index = Number(rest.slice(dot + 1))
    if (write.state[index] !== SENT || write.answers[index] !== undefined) return
    const answer = parseAnswer(msg)
    write.answers[index] = answer
    write.inflight--
    write.lastProgress = performance.now()
    // Stop sending after a failure worth retrying; the publishes already out are still awaited.
    if (answer.type !== 'ack' && judge(answer) !== 'permanent') write.stopped = true
    wakeUp(write)
  }
}

/** An ack, an API error, or a status message (503 no responders). */
export function parseAnswer(msg: Msg): PublishAnswer {
  const code = msg.headers?.code ?? 0
  if (code !== 0 && msg.data.length === 0) {
    return { type: 'status', code, description: msg.headers?.description ?? '' }
  }
  let body: {
    stream?: string
    seq?: number
    duplicate?: boolean
    error?: { code?: number; err_code?: number; description?: string }
  }
  try {
    body = JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString())
  } catch {
    return { type: 'status', code, description: `unreadable answer: ${Buffer.from(msg.data).toString()}` }
  }
  if (body.error) {
    return {
      type: 'api-error',
      status: body.error.code ?? 0,
      errCode: body.error.err_code ?? 0,
      description: body.error.description ?? 'unknown error',
    }
  }
  if (!body.stream) return { type: 'status', code, description: 'ack without a stream' }
  return { type: 'ack', stream: body.stream, seq: body.seq ?? 0, duplicate: body.duplicate === true }
}

function next(write: Write): Promise<void> {
  return new Promise((resolve) => {
    write.wake = resolve
  })
}

function wakeUp(write: Write): void {
  const wake = write.wake
  write.wake = null
  wake?.()
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}
