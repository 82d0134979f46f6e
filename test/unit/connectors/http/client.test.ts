import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { type TestContext, test } from 'node:test'
import { HttpClient } from '../../../../src/connectors/http/client.ts'
import { noAnswer } from '../../../../src/connectors/http/errors.ts'

async function serve(
  t: TestContext,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<URL> {
  const server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  t.after(() => server.closeAllConnections())
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/in`)
}

function client(t: TestContext, url: URL, timeoutMs = 10_000): HttpClient {
  const http = new HttpClient({ url, timeoutMs, maxSockets: 1 })
  t.after(() => http.close())
  return http
}

test('an answer of any status resolves, with only the start of its body kept', async (t) => {
  const url = await serve(t, (req, res) => {
    req.resume()
    res.writeHead(503, { 'retry-after': '7' }).end('x'.repeat(10_000))
  })
  const answer = await client(t, url).request({
    method: 'POST',
    headers: {},
    body: Buffer.from('a'),
    maxBodyBytes: 100,
  })
  assert.equal(answer.status, 503)
  assert.equal(answer.headers['retry-after'], '7')
  assert.equal(answer.body, 'x'.repeat(100))
  assert.equal(answer.truncated, true)
})

test('no answer within the timeout rejects with ETIMEDOUT', async (t) => {
  const url = await serve(t, (req) => req.resume())
  await assert.rejects(
    client(t, url, 200).request({ method: 'POST', headers: {}, maxBodyBytes: 100 }),
    (error: NodeJS.ErrnoException) =>
      error.code === 'ETIMEDOUT' && /no answer within 200 ms/.test(error.message),
  )
})

test('a kept-alive socket the server closed is resent on a fresh one only when asked', async (t) => {
  // The second request on a socket finds it closed before any answer (a server's idle timeout).
  const served = new WeakSet<Socket>()
  let fresh = 0
  const url = await serve(t, (req, res) => {
    req.resume()
    if (served.has(req.socket)) {
      req.socket.destroy()
      return
    }
    served.add(req.socket)
    fresh++
    res.end('ok')
  })
  const http = client(t, url)
  const ask = (resendOnStaleSocket: boolean) =>
    http.request({
      method: 'POST',
      headers: {},
      body: Buffer.from('a'),
      maxBodyBytes: 100,
      resendOnStaleSocket,
    })
  assert.equal((await ask(true)).body, 'ok')
  assert.equal((await ask(true)).body, 'ok', 'resent on a fresh socket')
  assert.equal(fresh, 2)
  await assert.rejects(ask(false), (error: NodeJS.ErrnoException) => error.code === 'ECONNRESET')
})

test('noAnswer names the sink, the server and the system code', () => {
  const error = noAnswer(
    'http',
    'http://h:1/in',
    Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
  )
  assert.equal(error.message, 'http: no answer from http://h:1/in (ECONNRESET: socket hang up)')
  assert.equal((error as { code?: string }).code, 'SPW_ERR_SINK_UNAVAILABLE')
  assert.match(noAnswer('x', 'y', 'text').message, /no answer from y \(text\)/)
})
