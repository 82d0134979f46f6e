/**
 * A real server process delivering to DuckDB and to an http sink whose receiver the test scripts,
 * with a data directory of its own; everything is stopped and removed after the test.
 */
import type { TestContext } from 'node:test'
import { destroyAgent } from './http.ts'
import { NdjsonReceiver } from './ndjson-receiver.ts'
import { type ServerProcess, startServerProcess } from './server-process.ts'
import { makeTempDir, removeTempDir } from './temp-dir.ts'

export interface HttpSinkRig {
  readonly receiver: NdjsonReceiver
  readonly dataDir: string
  readonly server: ServerProcess
}

export async function startHttpSinkRig(
  t: TestContext,
  prefix: string,
  env: Record<string, string>,
  respond?: NdjsonReceiver['respond'],
): Promise<HttpSinkRig> {
  const receiver = await NdjsonReceiver.start()
  if (respond) receiver.respond = respond
  const dataDir = await makeTempDir(prefix)
  let server: ServerProcess | undefined
  t.after(async () => {
    if (server && server.proc.exitCode === null && server.proc.signalCode === null) {
      server.kill('SIGKILL')
      await server.exited()
    }
    destroyAgent()
    await receiver.close()
    await removeTempDir(dataDir)
  })
  server = await startServerProcess(dataDir, {
    SPILLWAY_SINKS: 'duckdb,http',
    SPILLWAY_HTTP_SINK_URL: receiver.url,
    ...env,
  })
  return { receiver, dataDir, server }
}
