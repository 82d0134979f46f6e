/**
 * The baseline every benchmark measures in the same run: a bare node:http server that reads the
 * body, JSON.parses it (each line for NDJSON) and answers 202 — no validation, no disk, no store.
 * BASELINE_WORKERS=N runs it as N node:cluster workers sharing the port (bench/workers.ts: what
 * this machine gives a cluster at all).
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'

const workers = Number(process.env['BASELINE_WORKERS'] ?? 1)
if (workers > 1 && cluster.isPrimary) {
  let listening = 0
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', (address) => {
      if (++listening === workers)
        process.stdout.write(
          `${JSON.stringify({ msg: 'ServerStarted', url: `http://127.0.0.1:${address.port}` })}\n`,
        )
    })
  }
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM')
    process.exit(0)
  })
} else {
  serve()
}

function serve() {
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
    if (cluster.isWorker) return
    const address = server.address()
    process.stdout.write(
      `${JSON.stringify({ msg: 'ServerStarted', url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` })}\n`,
    )
  })
  process.on('SIGTERM', () => server.close(() => process.exit(0)))
}
