/**
 * Where the real `spillway serve` listens (issue 15, item 10): the API on its documented default
 * (every IPv4 interface), the unauthenticated operations port on loopback unless told otherwise,
 * and the ServerStarted line naming the addresses actually bound. What the kernel reports in
 * /proc/net/tcp is the judge, not the log.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const LINUX = existsSync('/proc/net/tcp')

async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ server: ServerProcess; started: Record<string, unknown> }> {
  const dataDir = await makeTempDir('spillway-binds-')
  // '' is "not set": the defaults are what is tested unless a case sets them.
  const server = await startServerProcess(dataDir, { SPILLWAY_HOST: '', METRICS_HOST: '', ...env }, args)
  t.after(async () => {
    server.kill('SIGTERM')
    await server.exited()
    await removeTempDir(dataDir)
  })
  const lines = (await readFile(server.logFile, 'utf8')).split('\n').filter((l) => l.startsWith('{'))
  const started = lines.map((l) => JSON.parse(l)).find((e) => e.msg === 'ServerStarted')
  assert.ok(started, 'the ServerStarted line is logged')
  return { server, started }
}

/** The local addresses the kernel has listening on `port` (IPv4 and IPv6), e.g. ['127.0.0.1']. */
async function listeningOn(port: number): Promise<string[]> {
  const found: string[] = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1)
    for (const row of rows) {
      const [, local, , state] = row.trim().split(/\s+/)
      if (!local || state !== '0A') continue
      const [hex, hexPort] = local.split(':')
      if (Number.parseInt(hexPort, 16) !== port) continue
      found.push(hex.length === 8 ? ipv4(hex) : hex === '0'.repeat(32) ? '::' : hex)
    }
  }
  return found
}

/** /proc/net/tcp writes an IPv4 address as one little-endian 32-bit hex word. */
function ipv4(hex: string): string {
  return [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join('.')
}

const portOf = (url: string) => Number(new URL(url).port)

test('by default the API listens on 0.0.0.0 and the operations port on loopback only, as the start log says', {
  skip: !LINUX && 'reads /proc/net/tcp',
}, async (t) => {
  const { server, started } = await serve(t, {})
  const apiPort = portOf(server.url)
  const metricsPort = portOf(server.metricsUrl)
  assert.deepEqual(await listeningOn(apiPort), ['0.0.0.0'])
  assert.deepEqual(await listeningOn(metricsPort), ['127.0.0.1'])
  assert.equal(started.address, `0.0.0.0:${apiPort}`)
  assert.equal(started.metricsAddress, `127.0.0.1:${metricsPort}`)
  // The URLs stay ones a client on this machine can use.
  assert.equal((await fetch(`${server.url}/health`)).status, 200)
  assert.equal((await fetch(`${server.metricsUrl}/metrics`)).status, 200)
})

test('--host and --metrics-host (METRICS_HOST) bind where they say, and the log follows', {
  skip: !LINUX && 'reads /proc/net/tcp',
}, async (t) => {
  const { server, started } = await serve(t, {}, ['--host', '127.0.0.1', '--metrics-host', '0.0.0.0'])
  assert.deepEqual(await listeningOn(portOf(server.url)), ['127.0.0.1'])
  assert.deepEqual(await listeningOn(portOf(server.metricsUrl)), ['0.0.0.0'])
  assert.equal(started.address, `127.0.0.1:${portOf(server.url)}`)
  assert.equal(started.metricsAddress, `0.0.0.0:${portOf(server.metricsUrl)}`)

  const viaEnv = await serve(t, { METRICS_HOST: '::1' })
  assert.deepEqual(await listeningOn(portOf(viaEnv.server.metricsUrl)), ['00000000000000000000000001000000'])
  assert.equal(viaEnv.started.metricsAddress, `[::1]:${portOf(viaEnv.server.metricsUrl)}`)
  assert.equal(viaEnv.server.metricsUrl, `http://[::1]:${portOf(viaEnv.server.metricsUrl)}`)
  assert.equal((await fetch(`${viaEnv.server.metricsUrl}/metrics`)).status, 200)
})
