/**
 * A real HTTP receiver for the `http` sink's tests: a node:http server on 127.0.0.1 that reads
 * NDJSON batches (gzip or not) and answers as the test says — an answer, a destroyed socket, or
 * silence. Events are recorded only when the answer is 2xx, as a real receiver would store them.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'

// biome-ignore lint/suspicious/noExplicitAny: events are arbitrary JSON
export type ReceivedEvent = Record<string, any>

export interface ReceivedRequest {
  readonly method: string
  readonly headers: IncomingHttpHeaders
  /** Decoded NDJSON lines (POST only). */
  readonly events: readonly ReceivedEvent[]
  /** The body as sent (maybe gzip'd). */
  readonly raw: Buffer
}

export type Reply =
  | { readonly status: number; readonly body?: string; readonly headers?: Record<string, string> }
  | 'destroy'
  | 'hang'

export type Responder = (request: ReceivedRequest) => Reply

export class NdjsonReceiver {
  readonly url: string
  /** Every request, in arrival order, whatever it was answered. */
  readonly requests: ReceivedRequest[] = []
  /** event_id → how many times it was stored (answered 2xx). */
  readonly stored = new Map<string, number>()
  /** Idempotency-Key of every batch answered 2xx. */
  readonly storedKeys: string[] = []
  /** TCP connections accepted so far. */
  connections = 0
  respond: Responder = () => ({ status: 200 })
  readonly #server: Server
  readonly #sockets = new Set<Socket>()

  private constructor(server: Server) {
    this.#server = server
    const { port } = server.address() as AddressInfo
    this.url = `http://127.0.0.1:${port}/ingest`
    server.on('connection', (socket) => {
      this.connections++
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start(): Promise<NdjsonReceiver> {
    let receiver: NdjsonReceiver | undefined
    const server = createServer((req, res) => {
      receiver!.handle(req).then(
        (reply) => {
          if (reply === 'hang') return
          if (reply === 'destroy') {
            req.socket.destroy()
            return
          }
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
          res.end(reply.body ?? '')
        },
        () => req.socket.destroy(),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    receiver = new NdjsonReceiver(server)
    return receiver
  }

  async handle(req: IncomingMessage): Promise<Reply> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const raw = Buffer.concat(chunks)
    const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')
    const events = text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ReceivedEvent)
    const request = { method: req.method ?? 'GET', headers: req.headers, events, raw }
    this.requests.push(request)
    const reply = this.respond(request)
    if (typeof reply === 'object' && reply.status >= 200 && reply.status < 300 && request.method === 'POST') {
      for (const event of events) this.stored.set(event.event_id, (this.stored.get(event.event_id) ?? 0) + 1)
      this.storedKeys.push(String(req.headers['idempotency-key']))
    }
    return reply
  }

  /** POST requests only. */
  get posts(): ReceivedRequest[] {
    return this.requests.filter((r) => r.method === 'POST')
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
