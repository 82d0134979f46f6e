/**
 * The baseline every benchmark measures in the same run: a bare node:http server that reads the
 * body, JSON.parses it (each line for NDJSON) and answers 202 — no validation, no disk, no store.
 */
import { createServer } from 'node:http'

const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8')
    let count = 0
    if (req.headers['content-type'] === 'application/x-ndjson') {
      for (const line of text.split('\n')) {
        if (!line) continue
        JSON.parse(line)
        count++
      }
    } else {
      JSON.parse(text)
      count = 1
    }
    res.writeHead(202, { 'content-type': 'application/json' })
    res.end(`{"status":"accepted","accepted":${count}}`)
  })
})
server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(
    `${JSON.stringify({ msg: 'ServerStarted', url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` })}\n`,
  )
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
