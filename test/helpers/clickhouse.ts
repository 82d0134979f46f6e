/**
 * A real ClickHouse for tests: `scripts/clickhouse.sh start` on free ports with its data in a temp
 * dir, one server per test file (`startClickHouse`, stopped with `stop()`), or the server at
 * CLICKHOUSE_URL when that is set (never stopped or restarted then). Each test gets a database
 * of its own (`uniqueDatabase`), dropped afterwards.
 */
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ClickHouseClient } from '../../src/connectors/clickhouse/client.ts'
import { quoteIdentifier } from '../../src/sinks/clickhouse/escape.ts'
import { ROOT } from './server-process.ts'
import { makeTempDir, removeTempDir } from './temp-dir.ts'

const run = promisify(execFile)
const SCRIPT = join(ROOT, 'scripts/clickhouse.sh')

export interface ClickHouseServer {
  readonly url: string
  /** The server was started here (not CLICKHOUSE_URL): it can be stopped and restarted. */
  readonly owned: boolean
  /** A client of the test's own (made again after `halt`/`crash`). */
  readonly client: ClickHouseClient
  query(sql: string): Promise<string>
  /** Stops the server (SIGTERM, then SIGKILL after a while); data stays. */
  halt(): Promise<void>
  /** SIGKILLs the server; data stays. */
  crash(): Promise<void>
  /** Starts it again on the same ports and data. */
  resume(): Promise<void>
  /** Stops it and removes its data. */
  stop(): Promise<void>
}

export async function startClickHouse(): Promise<ClickHouseServer> {
  const external = process.env['CLICKHOUSE_URL']
  if (external) {
    const client = new ClickHouseClient({ url: external })
    const refuse = async () => {
      throw new Error('the server at CLICKHOUSE_URL is not ours to stop')
    }
    return {
      url: external,
      owned: false,
      client,
      query: (sql) => client.query(sql),
      halt: refuse,
      crash: refuse,
      resume: refuse,
      stop: async () => client.close(),
    }
  }
  const dir = await makeTempDir('spillway-clickhouse-')
  const [httpPort, tcpPort] = [await freePort(), await freePort()]
  const start = async () =>
    (await run('bash', [SCRIPT, 'start', dir, String(httpPort), String(tcpPort)])).stdout.trim()
  const url = await start()
  let client = new ClickHouseClient({ url })
  // An idle keep-alive connection holds up a ClickHouse shutdown (18.16 waits for it), so the
  // test's own connections are dropped before the server is stopped.
  const disconnect = () => {
    client.close()
    client = new ClickHouseClient({ url })
  }
  return {
    url,
    owned: true,
    get client() {
      return client
    },
    query: (sql) => client.query(sql),
    halt: async () => {
      disconnect()
      await run('bash', [SCRIPT, 'stop', dir])
    },
    crash: async () => {
      disconnect()
      const { stdout } = await run('cat', [join(dir, 'clickhouse.pid')])
      process.kill(Number(stdout.trim()), 'SIGKILL')
      await run('bash', [SCRIPT, 'stop', dir])
    },
    resume: async () => {
      await start()
    },
    stop: async () => {
      client.close()
      await run('bash', [SCRIPT, 'stop', dir])
      await removeTempDir(dir)
    },
  }
}

let databases = 0

/** A database name no other test uses (created by the sink, dropped by `dropDatabase`). */
export function uniqueDatabase(prefix = 'spillway_test'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${databases++}`
}

export async function dropDatabase(server: ClickHouseServer, database: string): Promise<void> {
  await server.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`).catch(() => {})
}

/**
 * event_id → rows, after `OPTIMIZE … FINAL` merged what the ReplacingMergeTree will merge: what
 * the store holds for good. `before` is the same count taken first (copies not merged yet).
 */
export async function storedClickHouseCounts(
  server: ClickHouseServer,
  database: string,
  table = 'events',
): Promise<{ merged: Map<string, number>; rowsBefore: number; uniqueBefore: number }> {
  const name = `${quoteIdentifier(database)}.${quoteIdentifier(table)}`
  const [rowsBefore, uniqueBefore] = (
    await server.query(`SELECT count(), uniqExact(event_id) FROM ${name} FORMAT TabSeparated`)
  )
    .trim()
    .split('\t')
    .map(Number)
  await server.query(`OPTIMIZE TABLE ${name} FINAL`)
  const text = await server.query(
    `SELECT event_id, count() FROM ${name} GROUP BY event_id FORMAT TabSeparated`,
  )
  const merged = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line) continue
    const tab = line.lastIndexOf('\t')
    merged.set(line.slice(0, tab), Number(line.slice(tab + 1)))
  }
  return { merged, rowsBefore, uniqueBefore }
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
