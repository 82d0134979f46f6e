/**
 * The end-of-test checks of G1–G3 (docs/ARCHITECTURE.md "Guarantees") against the real files a
 * server left behind: how often each
 * event_id is in DuckDB, whether `spillway wal verify` is clean, and the exactly-once assertion
 * (for any store: helpers/clickhouse.ts counts ClickHouse rows the same way).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { DuckDBInstance } from '@duckdb/node-api'
import { NODE, ROOT } from './server-process.ts'

/** event_id → number of rows, read from a DuckDB file no server holds any more. */
export async function storedEventCounts(path: string): Promise<Map<string, number>> {
  const db = await DuckDBInstance.create(path)
  const conn = await db.connect()
  try {
    const rows = (
      await conn.runAndReadAll('SELECT event_id, count(*)::INTEGER AS n FROM events GROUP BY event_id')
    ).getRowObjects()
    return new Map(rows.map((r) => [String(r['event_id']), Number(r['n'])]))
  } finally {
    conn.closeSync()
    db.closeSync()
  }
}

/** `spillway wal verify --json` on a data directory (exit 1 still returns its report). */
export async function walVerify(
  dataDir: string,
): Promise<{ ok: boolean; warnings: string[]; problems: string[] }> {
  const { stdout } = await promisify(execFile)(
    NODE,
    [join(ROOT, 'src/cli/main.ts'), 'wal', 'verify', '--json'],
    {
      env: { ...process.env, SPILLWAY_DATA_DIR: dataDir },
    },
  ).catch((error) => error as { stdout: string })
  return JSON.parse(stdout)
}

/** Every acked id stored exactly once, nothing stored twice, nothing stored that was not sent. */
export function assertExactlyOnce(
  stored: ReadonlyMap<string, number>,
  acked: ReadonlySet<string>,
  sent: ReadonlySet<string>,
  store = 'DuckDB',
): void {
  assert.deepEqual([...stored].filter(([, n]) => n > 1).slice(0, 10), [], 'no event stored twice')
  const missing = [...acked].filter((id) => !stored.has(id))
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acked events missing from ${store}`)
  const unknown = [...stored.keys()].filter((id) => !sent.has(id))
  assert.deepEqual(unknown.slice(0, 10), [], 'only events that were sent are stored')
}
