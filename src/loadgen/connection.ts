/**
 * One keep-alive HTTP/1.1 connection of the load generator, on a bare TCP socket.
 *
 * node:http's client costs more per request than the servers it is meant to measure, so the
 * generator writes pre-serialised requests itself and reads only what it needs of each answer:
 * the status code and where the answer ends (Content-Length, chunked, or the connection closing).
 * One request at a time per connection (no pipelining), as a browser or an SDK would send.
 */
import { connect, type Socket } from 'node:net'

export interface Answer {
  /** The HTTP status; 0 when the connection failed before a whole answer came. */
  readonly status: number
}

export interface ConnectionEvents {
  /** The request's answer, or its failure (status 0). The connection is free again if `alive`. */
  answered(connection: Connection, status: number): void
  /** The connection is gone (closed, failed, or destroyed after a timeout). */
  closed(connection: Connection): void
}

const CRLFCRLF = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')

export class Connection {
  readonly #socket: Socket
  readonly #events: ConnectionEvents
  #connected = false
  #pending: string | Buffer | null = null
  #busy = false
  #closing = false
  #alive = true
  #buffer: Buffer | null = null
  /** The answer being read: -1 while the head is incomplete. */
  #status = -1
  #bodyLeft = 0
  #chunked = false
  #untilClose = false
  #closeAfter = false
  /** Free for the caller: the scheduled time and the deadline of the request in flight. */
  scheduledAt = 0
  sentAt = 0
  deadline = 0
  events = 0
  /** At least one answer came on this connection. */
  answeredAny = false
  /** When it was last parked as idle (ms on the run's clock). */
  idleSince = 0
  readonly #ready = Promise.withResolvers<boolean>()

  constructor(host: string, port: number, events: ConnectionEvents) {
    this.#events = events
    this.#socket = connect({ host, port, noDelay: true })
    this.#socket.on('connect', () => {
      this.#connected = true
      this.#ready.resolve(true)
      if (this.#pending !== null) {
        this.#socket.write(this.#pending)
        this.#pending = null
      }
    })
    this.#socket.on('data', (chunk: Buffer) => this.#read(chunk))
    this.#socket.on('end', () => this.#ended())
    this.#socket.on('error', () => {})
    this.#socket.on('close', () => this.#closed())
  }

  /** Resolves true once connected, false if the connection failed first. */
  get ready(): Promise<boolean> {
    return this.#ready.promise
  }

  get busy(): boolean {
    return this.#busy
  }

  get alive(): boolean {
    return this.#alive
  }

  /** Sends one request; the answer comes to `events.answered`. */
  send(bytes: string | Buffer): void {
    if (this.#busy || !this.#alive) throw new Error('the connection is busy or closed')
    this.#busy = true
    this.#status = -1
    if (this.#connected) this.#socket.write(bytes)
    else this.#pending = bytes
  }

  /** Drops the connection; a request in flight is answered with status 0. */
  destroy(): void {
    this.#socket.destroy()
  }

  #read(chunk: Buffer): void {
    let data = this.#buffer === null ? chunk : Buffer.concat([this.#buffer, chunk])
    this.#buffer = null
    while (data.length > 0) {
      if (!this.#busy) return // bytes nobody asked for: ignore them
      if (this.#status < 0) {
        const end = data.indexOf(CRLFCRLF)
        if (end < 0) {
          this.#buffer = data
          return
        }
        if (!this.#head(data.toString('latin1', 0, end))) return
        data = data.subarray(end + 4)
        if (this.#status >= 100 && this.#status < 200) {
          this.#status = -1 // 100 Continue and friends: the real answer follows
          continue
        }
      }
      if (this.#untilClose) return // the answer ends when the server closes
      if (this.#chunked) {
        const rest = this.#readChunks(data)
        if (rest === null) return
        data = rest
      } else {
        const take = Math.min(this.#bodyLeft, data.length)
        this.#bodyLeft -= take
        data = data.subarray(take)
        if (this.#bodyLeft > 0) return
      }
      this.#complete()
    }
  }

  /** Reads the status line and the headers that say where the body ends; false on garbage. */
  #head(head: string): boolean {
    const status = head.startsWith('HTTP/1.') ? Number(head.slice(9, 12)) : Number.NaN
    if (!Number.isInteger(status) || status < 100) {
      this.destroy()
      return false
    }
    this.#status = status
    const lower = head.toLowerCase()
    this.#closeAfter = lower.includes('\r\nconnection: close')
    this.#chunked = /\r\ntransfer-encoding:[^\r]*chunked/.test(lower)
    const length = /\r\ncontent-length:\s*(\d+)/.exec(lower)
    this.#bodyLeft = length ? Number(length[1]) : 0
    this.#untilClose = !this.#chunked && !length && status !== 204 && status !== 304 && status >= 200
    return true
  }

  /** Consumes chunked body bytes; the bytes after the last chunk, or null when more are needed. */
  #readChunks(data: Buffer): Buffer | null {
    let at = 0
    for (;;) {
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, data.length - at)
        this.#bodyLeft -= take
        at += take
        if (this.#bodyLeft > 0) return null
      }
      const eol = data.indexOf(CRLF, at)
      if (eol < 0) break
      const line = data.toString('latin1', at, eol)
      if (line === '') {
        at = eol + 2 // the CRLF after a chunk's data
        continue
      }
      const size = Number.parseInt(line, 16)
      if (size === 0) {
        // The last chunk; no trailers are expected, so the answer ends with the empty line.
        const end = data.indexOf(CRLFCRLF, eol)
        if (end !== eol) {
          if (end < 0) break
          return data.subarray(end + 4)
        }
        return data.subarray(eol + 4)
      }
      this.#bodyLeft = size + 2 // the data and its CRLF
      at = eol + 2
    }
    this.#buffer = data.subarray(at)
    return null
  }

  #complete(): void {
    const status = this.#status
    this.#status = -1
    this.#busy = false
    if (this.#closeAfter) {
      this.#alive = false
      this.#socket.end()
    }
    this.#events.answered(this, status)
  }

  #ended(): void {
    // An answer without a length ends with the connection.
    if (this.#busy && this.#untilClose && this.#status >= 200) {
      this.#alive = false
      this.#complete()
    }
    this.#socket.end()
  }

  #closed(): void {
    if (this.#closing) return
    this.#closing = true
    this.#alive = false
    this.#ready.resolve(false)
    if (this.#busy) {
      this.#busy = false
      this.#events.answered(this, 0)
    }
    this.#events.closed(this)
  }
}
