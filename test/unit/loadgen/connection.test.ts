import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Connection } from '../../../src/loadgen/connection.ts'

/** A TCP server that answers each request (ended by an empty body's CRLFCRLF) with `reply`. */
async function rawServer(
  reply: (socket: Socket, n: number) => Promise<void> | void,
): Promise<{ server: Server; port: number }> {
  let n = 0
  const server = createServer((socket) => {
    let pending = ''
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1')
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4)
        void reply(socket, n++)
      }
    })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}

/** Sends `count` requests one after another on one connection; the statuses, and whether it closed. */
async function exchange(port: number, count: number): Promise<{ statuses: number[]; closed: boolean }> {
  const statuses: number[] = []
  let closed = false
  const done = Promise.withResolvers<void>()
  const connection = new Connection('127.0.0.1', port, {
    answered(c, status) {
      statuses.push(status)
      if (statuses.length < count && c.alive) c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
      else done.resolve()
    },
    closed() {
      closed = true
      done.resolve()
    },
  })
  connection.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  await done.promise
  await sleep(20)
  connection.destroy()
  return { statuses, closed }
}

test('answers with a Content-Length are read even when they come a few bytes at a time', async (t) => {
  const { server, port } = await rawServer(async (socket, n) => {
    const answer = `HTTP/1.1 ${n === 1 ? 503 : 202} Accepted\r\nContent-Length: 15\r\n\r\n{"accepted": 1}`
    for (let i = 0; i < answer.length; i += 7) {
      socket.write(answer.slice(i, i + 7))
      await sleep(1)
    }
  })
  t.after(() => server.close())
  assert.deepEqual((await exchange(port, 3)).statuses, [202, 503, 202])
})

test('an answer whose head and body come apart, and one with an empty body', async (t) => {
  const { server, port } = await rawServer(async (socket, n) => {
    if (n === 0) {
      socket.write('HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n')
      await sleep(5)
      socket.write('ok')
    } else {
      socket.write('HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n')
    }
  })
  t.after(() => server.close())
  assert.deepEqual((await exchange(port, 2)).statuses, [202, 429])
})

test('chunked answers end at the last chunk, however the bytes are split', async (t) => {
  const body = '5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n'
  const { server, port } = await rawServer(async (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
    for (const ch of body) {
      socket.write(ch)
      await sleep(0)
    }
  })
  t.after(() => server.close())
  assert.deepEqual((await exchange(port, 2)).statuses, [200, 200])
})

test('a 100 Continue before the answer is skipped', async (t) => {
  const { server, port } = await rawServer((socket) => {
    socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad')
  })
  t.after(() => server.close())
  assert.deepEqual((await exchange(port, 1)).statuses, [400])
})

test('Connection: close ends the connection after its answer; a body without length ends with it', async (t) => {
  const { server, port } = await rawServer((socket, n) => {
    if (n === 0) socket.end('HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
  })
  t.after(() => server.close())
  const result = await exchange(port, 2)
  assert.deepEqual(result.statuses, [202])
  assert.equal(result.closed, true)

  const { server: old, port: oldPort } = await rawServer((socket) => {
    socket.end('HTTP/1.0 202 Accepted\r\n\r\nbody until close')
  })
  t.after(() => old.close())
  assert.deepEqual((await exchange(oldPort, 1)).statuses, [202])
})

test('a connection lost mid-answer, garbage, or a refused connect answer status 0', async (t) => {
  const { server, port } = await rawServer((socket) => {
    socket.write('HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\nonly part')
    setTimeout(() => socket.destroy(), 5)
  })
  t.after(() => server.close())
  assert.deepEqual(await exchange(port, 1), { statuses: [0], closed: true })

  const { server: junk, port: junkPort } = await rawServer((socket) => {
    socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n')
  })
  t.after(() => junk.close())
  assert.deepEqual((await exchange(junkPort, 1)).statuses, [0])

  const closedPort = port
  server.close()
  await once(server, 'close')
  assert.deepEqual(await exchange(closedPort, 1), { statuses: [0], closed: true })
})
