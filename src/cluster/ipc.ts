/**
 * Calls and notes between the primary of `serve --workers N` and its workers, over the IPC
 * channel node:cluster opens (JSON messages). Either side can call the other:
 * - a call is `{ rpc: 'call', id, method, args }`, answered by `{ rpc: 'reply', id, ok, value }`
 *   or `{ rpc: 'reply', id, ok: false, error: { message, code? } }`; a SpillwayError keeps its
 *   code (and so its HTTP status) across the channel;
 * - a note is `{ rpc: 'note', type, body }`: fire and forget, in order.
 * A call that is not answered within its timeout, or whose channel closes, rejects; the answer
 * that comes later is dropped.
 */
import { ERRORS, type ErrorCode, isSpillwayError, spillwayError } from '../errors.ts'

/** The side of the IPC channel: `process` in a worker, a cluster `Worker` in the primary. */
export interface Channel {
  send(message: unknown, callback?: (error: Error | null) => void): boolean
  on(event: 'message', listener: (message: unknown) => void): unknown
  off(event: 'message', listener: (message: unknown) => void): unknown
}

type Handler = (args: unknown) => unknown

interface CallMessage {
  readonly rpc: 'call'
  readonly id: number
  readonly method: string
  readonly args: unknown
}

interface ReplyMessage {
  readonly rpc: 'reply'
  readonly id: number
  readonly ok: boolean
  readonly value?: unknown
  readonly error?: { readonly message: string; readonly code?: string }
}

interface NoteMessage {
  readonly rpc: 'note'
  readonly type: string
  readonly body: unknown
}

type Message = CallMessage | ReplyMessage | NoteMessage

export class Rpc {
  readonly #channel: Channel
  readonly #handlers = new Map<string, Handler>()
  readonly #notes = new Map<string, (body: unknown) => void>()
  readonly #waiting = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }
  >()
  readonly #listener = (message: unknown) => this.#receive(message)
  #next = 0
  #closed = false

  constructor(channel: Channel) {
    this.#channel = channel
    channel.on('message', this.#listener)
  }

  /** Answers calls of `method` with what `handler` returns (or throws). */
  handle(method: string, handler: Handler): this {
    this.#handlers.set(method, handler)
    return this
  }

  /** Runs `listener` on every note of `type`. */
  onNote(type: string, listener: (body: unknown) => void): this {
    this.#notes.set(type, listener)
    return this
  }

  call(method: string, args: unknown, timeoutMs: number): Promise<unknown> {
    if (this.#closed) return Promise.reject(channelClosed())
    const id = ++this.#next
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(
          spillwayError(
            'SPW_ERR_SERVER_NOT_READY',
            `the ${method} call between cluster processes was not answered within ${timeoutMs} ms`,
          ),
        )
      }, timeoutMs)
      this.#waiting.set(id, { resolve, reject, timer })
      this.#send({ rpc: 'call', id, method, args } satisfies CallMessage, (error) => {
        if (!error) return
        clearTimeout(timer)
        this.#waiting.delete(id)
        reject(channelClosed())
      })
    })
  }

  /** Sends a note; `sent` resolves once it is handed to the channel (false if it is closed). */
  note(type: string, body: unknown): Promise<boolean> {
    return new Promise((resolve) => this.#send({ rpc: 'note', type, body }, (error) => resolve(!error)))
  }

  /** Rejects every call still waiting and stops listening. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#channel.off('message', this.#listener)
    for (const { reject, timer } of this.#waiting.values()) {
      clearTimeout(timer)
      reject(channelClosed())
    }
    this.#waiting.clear()
  }

  #send(message: Message, callback: (error: Error | null) => void): void {
    if (this.#closed) {
      callback(channelClosed())
      return
    }
    try {
      this.#channel.send(message, callback)
    } catch (error) {
      // ERR_IPC_CHANNEL_CLOSED is thrown, not passed to the callback.
      callback(error as Error)
    }
  }

  #receive(raw: unknown): void {
    if (typeof raw !== 'object' || raw === null || !('rpc' in raw)) return
    const message = raw as Message
    if (message.rpc === 'note') {
      this.#notes.get(message.type)?.(message.body)
    } else if (message.rpc === 'reply') {
      const waiting = this.#waiting.get(message.id)
      if (!waiting) return
      this.#waiting.delete(message.id)
      clearTimeout(waiting.timer)
      if (message.ok) waiting.resolve(message.value)
      else waiting.reject(revive(message.error))
    } else if (message.rpc === 'call') {
      void this.#answer(message)
    }
  }

  async #answer(call: CallMessage): Promise<void> {
    const handler = this.#handlers.get(call.method)
    let reply: ReplyMessage
    try {
      if (!handler) throw new Error(`no handler for ${call.method}`)
      reply = { rpc: 'reply', id: call.id, ok: true, value: await handler(call.args) }
    } catch (error) {
      const e = error as Error
      reply = {
        rpc: 'reply',
        id: call.id,
        ok: false,
        error: { message: e.message, ...(isSpillwayError(e) && { code: e.code }) },
      }
    }
    this.#send(reply, () => {})
  }
}

function revive(error: ReplyMessage['error']): Error {
  const message = error?.message ?? 'unknown error'
  const code = error?.code
  return code && code in ERRORS ? spillwayError(code as ErrorCode, message) : new Error(message)
}

function channelClosed(): Error {
  return spillwayError('SPW_ERR_SERVER_NOT_READY', 'the channel to the other cluster process is closed')
}
