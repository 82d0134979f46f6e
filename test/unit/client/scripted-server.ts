/**
 * A real HTTP server whose answers a test scripts, for the client's unit tests: it records every
 * request (decoded NDJSON events, headers, arrival time, how many were in flight) and answers
 * with what `answer` returns — by default the server's 202 with counts — or drops the connection.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { gunzipSync } from 'node:zlib'

export interface Received {
  readonly events: Record<string, unknown>[]
  readonly headers: IncomingHttpHeaders
  readonly url: string
  readonly bytes: number
  readonly gzip: boolean
  readonly at: number
  /** Requests in flight when this one arrived, itself included. */
  readonly concurrent: number
}

export type Answer =
  | { status: number; headers?: Record<string, string>; body?: unknown; delayMs?: number }
  | 'destroy'

export interface ScriptedServer {
  readonly url: string
  readonly requests: Received[]
  /** Every event of every request answered 2xx, in arrival order. */
  readonly accepted: Record<string, unknown>[]
  answer: (request: Received, index: number) => Answer
  close(): Promise<void>
}

export const acceptAll = (request: Received): Answer => ({
  status: 202,
  body: { accepted: request.events.length, duplicates: 0, rejected: [] },
})

export async function startScriptedServer(
  answer: (request: Received, index: number) => Answer = acceptAll,
): Promise<ScriptedServer> {
  let inFlight = 0
  const requests: Received[] = []
  const accepted: Record<string, unknown>[] = []
  const state = { answer }
  const server: Server = createServer((req, res) => {
    inFlight++
    const concurrent = inFlight
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      const gzip = req.headers['content-encoding'] === 'gzip'
      const text = (gzip ? gunzipSync(raw) : raw).toString('utf8')
      const events = text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      const received: Received = {
        events,
        headers: req.headers,
        url: req.url ?? '',
        bytes: raw.length,
        gzip,
        at: Date.now(),
        concurrent,
      }
      requests.push(received)
      const reply = state.answer(received, requests.length - 1)
      const finish = () => {
        inFlight--
        if (reply === 'destroy') {
          req.socket.destroy()
          return
        }
        if (reply.status >= 200 && reply.status < 300) accepted.push(...events)
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
        res.end(JSON.stringify(reply.body ?? {}))
      }
      if (reply !== 'destroy' && reply.delayMs) setTimeout(finish, reply.delayMs)
      else finish()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    accepted,
    get answer() {
      return state.answer
    },
    set answer(next) {
      state.answer = next
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
