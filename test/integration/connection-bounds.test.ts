/**
 * What a client can hold on the API port, against the real server on a socket (issue 15, items
 * 5, 8, 19): bodies trickled slowly hold only the bytes they sent, connections beyond
 * `maxConnections` are answered 503 and closed, idle keep-alive connections are closed after
 * `keepAliveTimeoutMs`, and `Expect: 100-continue` gets its final answer at once when the request
 * would be refused.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { eventBody, uniqueEventId } from '../helpers/events.ts'
import { destroyAgent, postJson } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'

const now = Math.floor(Date.now() / 1000)
const event = () =>
  eventBody({ event_id: uniqueEventId('bounds'), event_name: 'bounds', user_id: 'u', timestamp: now })

/** A raw socket; `text()` is everything the server sent so far, `closed` resolves when it closes. */
function rawSocket(port: number) {
  const socket: Socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (c) => chunks.push(c))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  return { socket, connected, closed, text: () => Buffer.concat(chunks).toString('latin1') }
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

test('sixteen bodies declaring 16 MiB and trickling one byte do not starve other clients (they held all of maxPendingBytes)', async (t) => {
  t.after(() => destroyAgent())
  const server = await startTestServer(t, {
    maxPendingBytes: 256 * 1024 * 1024,
    maxBatchBytes: 16 * 1024 * 1024,
  })
  const port = Number(new URL(server.url).port)
  const slow = Array.from({ length: 16 }, () => rawSocket(port))
  for (const s of slow) {
    await s.connected
    s.socket.write(
      `POST /events/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${16 * 1024 * 1024}\r\n\r\n{`,
    )
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  for (let i = 0; i < 20; i++) {
    const answer = await postJson(`${server.url}/events`, event())
    assert.equal(answer.status, 202, JSON.stringify(answer.body))
  }
  assert.ok(
    server.admission.pendingBytes < 1024,
    `the slow bodies hold what they sent: ${server.admission.pendingBytes}`,
  )
  for (const s of slow) s.socket.destroy()
  await until('the slow bodies released their bytes', () => server.admission.pendingBytes === 0)
})

test('connections beyond maxConnections are answered 503 with Retry-After and closed; the others are served', async (t) => {
  t.after(() => destroyAgent())
  const server = await startTestServer(t, { maxConnections: 20 })
  const port = Number(new URL(server.url).port)
  const held = Array.from({ length: 20 }, () => rawSocket(port))
  await Promise.all(held.map((s) => s.connected))
  const extra = rawSocket(port)
  await extra.connected
  extra.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  await extra.closed
  assert.match(extra.text(), /^HTTP\/1\.1 503 /)
  assert.match(extra.text(), /retry-after: 1/i)
  assert.match(extra.text(), /maxConnections/)
  // A held connection is served normally.
  held[0].socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  await until('a held connection is answered', () => held[0].text().includes('healthy'))
  assert.match(held[0].text(), /^HTTP\/1\.1 200 /)
  for (const s of held) s.socket.destroy()
  await Promise.all(held.map((s) => s.closed))
  await until('a new connection is served once the others closed', () => true)
  const answer = await postJson(`${server.url}/events`, event())
  assert.equal(answer.status, 202)
})

test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async (t) => {
  const server = await startTestServer(t, { keepAliveTimeoutMs: 300 })
  const port = Number(new URL(server.url).port)
  const s = rawSocket(port)
  await s.connected
  s.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  await until('the answer', () => s.text().includes('healthy'))
  // Generous: node checks idle sockets on its own timer; the old setting kept them 75 s.
  const closedInTime = await Promise.race([
    s.closed.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
  ])
  assert.ok(closedInTime, 'the idle connection was closed')
})

test('Expect: 100-continue on an oversized body is answered 413 at once, never 100 Continue', async (t) => {
  const server = await startTestServer(t, { maxBatchBytes: 1024 * 1024 })
  const port = Number(new URL(server.url).port)
  const s = rawSocket(port)
  await s.connected
  s.socket.write(
    `POST /events/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nExpect: 100-continue\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n`,
  )
  await until('an answer', () => s.text().includes('\r\n\r\n'))
  assert.match(s.text(), /^HTTP\/1\.1 413 /, s.text().slice(0, 200))
  assert.doesNotMatch(s.text(), /100 Continue/)
  assert.match(s.text(), /larger than 1048576 bytes/)
  s.socket.destroy()
})

test('Expect: 100-continue on an acceptable body gets 100 Continue, then 202', async (t) => {
  const server = await startTestServer(t)
  const port = Number(new URL(server.url).port)
  const s = rawSocket(port)
  await s.connected
  const body = JSON.stringify(event())
  s.socket.write(
    `POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
  )
  await until('100 Continue', () => s.text().startsWith('HTTP/1.1 100 Continue'))
  s.socket.write(body)
  await until('the final answer', () => /HTTP\/1\.1 202 /.test(s.text()))
  s.socket.destroy()
})

test('a gzip body whose inflation would pass maxPendingBytes while others hold bytes is refused with 503', async (t) => {
  t.after(() => destroyAgent())
  const server = await startTestServer(t, { maxPendingBytes: 64 * 1024 })
  const port = Number(new URL(server.url).port)
  // Another request holds 40 KB in memory (sent, not finished).
  const slow = rawSocket(port)
  await slow.connected
  slow.socket.write(
    `POST /events/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${1024 * 1024}\r\n\r\n${' '.repeat(40 * 1024)}`,
  )
  await until('the slow body is held', () => server.admission.pendingBytes >= 40 * 1024)
  // 100 KB of events that gzip to a few KB: small on the wire, over the bound once inflated.
  const lines = Array.from({ length: 400 }, () => JSON.stringify(event())).join('\n')
  const answer = await fetch(`${server.url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
    body: gzipSync(Buffer.from(lines)),
  })
  assert.equal(answer.status, 503)
  assert.equal(answer.headers.get('retry-after'), '1')
  assert.equal(((await answer.json()) as { bound: string }).bound, 'pending_bytes')
  slow.socket.destroy()
  await until('the slow body released its bytes', () => server.admission.pendingBytes === 0)
})
