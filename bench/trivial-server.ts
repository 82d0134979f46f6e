/**
 * The "trivial server" the load generator is measured against (bench/load.ts): a bare TCP server
 * that answers every HTTP/1.1 request with a canned 202, reading only enough of the request to
 * find where it ends. It does the least a server can, so what limits the request rate is the
 * client — the generator, or wrk beside it.
 */
import { createServer } from 'node:net'

const ANSWER = Buffer.from(
  'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"accepted":1}\r\n',
)

const server = createServer((socket) => {
  socket.setNoDelay(true)
  let pending: Buffer | null = null
  let bodyLeft = 0
  socket.on('data', (chunk: Buffer) => {
    let data = pending ? Buffer.concat([pending, chunk]) : chunk
    pending = null
    let answers = 0
    while (data.length > 0) {
      if (bodyLeft > 0) {
        const take = Math.min(bodyLeft, data.length)
        bodyLeft -= take
        data = data.subarray(take)
        if (bodyLeft > 0) break
        answers++
        continue
      }
      const end = data.indexOf('\r\n\r\n')
      if (end < 0) {
        pending = data
        break
      }
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(data.toString('latin1', 0, end))
      bodyLeft = length ? Number(length[1]) : 0
      data = data.subarray(end + 4)
      if (bodyLeft === 0) answers++
    }
    if (answers === 1) socket.write(ANSWER)
    else if (answers > 1) socket.write(Buffer.concat(Array(answers).fill(ANSWER)))
  })
  socket.on('error', () => {})
})

server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(
    `${JSON.stringify({ msg: 'ServerStarted', url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` })}\n`,
  )
})
process.on('SIGTERM', () => process.exit(0))
