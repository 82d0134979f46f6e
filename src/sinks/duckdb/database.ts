/**
 * One DuckDB database file per process: the sink and the query backend share one DuckDBInstance
 * and each works on its own connection. Two instances on one file in one process would both
 * write it (DuckDB's file lock is per process, so it does not stop the second), which corrupts
 * it; `openDuckDb` hands out the one instance of a path, counted, and the last `release()`
 * checkpoints and closes it. The table is per module instance, i.e. per thread: the sink and the
 * query backend both live in the delivery thread.
 */
import { mkdir } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api'
import { type EventField, STORE_COLUMNS } from '../../event/fields.ts'

/**
 * `timestamp` is the event time (UTC, second precision), `received_at` the server's receipt time
 * (UTC, millisecond precision). Plain VARCHAR for `channel` and the names: the DataChunk appender
 * writes VARCHAR as fast as anything, and DuckDB dictionary-compresses repeated values on disk.
 * No primary key on `event_id`: an ART index would cost memory per row and make one duplicate
 * fail a whole batch; the sink is idempotent on replay instead (see sink.ts), on
 * (`tenant`, `event_id`). `tenant` is the API key's label ('' with keys off); it comes last so a
 * table made before tenants gets it by ADD COLUMN (ADDED_COLUMNS_DDL) and keeps its column order.
 *
 * The columns and their types are the field table's (src/event/fields.ts `duckdb`), in
 * STORE_COLUMNS order: a field added to the table later (`columnAddedLater`) is appended here and
 * added to existing tables by ADD COLUMN at open.
 */
export const EVENTS_DDL = `CREATE TABLE IF NOT EXISTS events (
  ${STORE_COLUMNS.map((field) => `${duckDbName(field.name)} ${duckDbOf(field).column}`).join(',\n  ')}
)`

/** Gives a table made before them the columns added since (`tenant`). */
export const ADDED_COLUMNS_DDL: readonly string[] = STORE_COLUMNS.filter((f) => f.columnAddedLater).map(
  (field) =>
    `ALTER TABLE events ADD COLUMN IF NOT EXISTS ${duckDbName(field.name)} ${duckDbOf(field).column}`,
)

/** A column name as SQL text: quoted where DuckDB would read it as a keyword. */
export function duckDbName(name: string): string {
  return name === 'timestamp' ? '"timestamp"' : name
}

/** A stored field's DuckDB column; every stored field has one (fields.test checks). */
export function duckDbOf(field: EventField): NonNullable<EventField['duckdb']> {
  if (field.duckdb === undefined) throw new Error(`src/event/fields.ts: ${field.name} has no DuckDB column`)
  return field.duckdb
}

export const CURSORS_DDL = `CREATE TABLE IF NOT EXISTS spillway_cursors (
  sink VARCHAR PRIMARY KEY,
  position BIGINT NOT NULL,
  updated_at TIMESTAMP
)`

/** Creates the tables if missing. Idempotent; safe on every open. */
export async function ensureSchema(connection: DuckDBConnection): Promise<void> {
  await connection.run(EVENTS_DDL)
  for (const ddl of ADDED_COLUMNS_DDL) await connection.run(ddl)
  await connection.run(CURSORS_DDL)
}

/** Something that hands out connections: a DuckDBInstance, a DuckDbHandle or an open DuckDbSink. */
export interface DuckDbConnector {
  connect(): Promise<DuckDBConnection>
}

/** A counted reference to the process's instance of one database file. */
export interface DuckDbHandle extends DuckDbConnector {
  /** Absolute path of the file (or `:memory:`). */
  readonly path: string
  readonly instance: DuckDBInstance
  /** A new connection, closed by `release()` if still open. */
  connect(): Promise<DuckDBConnection>
  /** Closes this handle's connections; the last handle of a path checkpoints and closes the instance. */
  release(): Promise<void>
}

interface Entry {
  readonly instance: Promise<DuckDBInstance>
  refs: number
}

const open = new Map<string, Entry>()

/**
 * The instance of `path`, created (with its directory and the schema) on first use.
 * `:memory:` is never shared: each call is a new in-memory database.
 */
export async function openDuckDb(path: string, config?: Record<string, string>): Promise<DuckDbHandle> {
  const memory = path === ':memory:'
  const key = memory ? path : resolve(path)
  let entry = memory ? undefined : open.get(key)
  if (!entry) {
    entry = { instance: createInstance(key, config), refs: 0 }
    if (!memory) open.set(key, entry)
    const created = entry
    created.instance.catch(() => {
      if (open.get(key) === created) open.delete(key)
    })
  }
  entry.refs++
  let instance: DuckDBInstance
  try {
    instance = await entry.instance
  } catch (error) {
    entry.refs--
    throw error
  }
  const owner = entry
  const connections = new Set<DuckDBConnection>()
  let released = false
  return {
    path: key,
    instance,
    async connect() {
      if (released) throw new Error(`DuckDB handle of ${key} is released`)
      const connection = await instance.connect()
      connections.add(connection)
      return connection
    },
    async release() {
      if (released) return
      released = true
      for (const connection of connections) connection.closeSync()
      connections.clear()
      if (--owner.refs > 0) return
      if (open.get(key) === owner) open.delete(key)
      await closeInstance(instance)
    },
  }
}

async function createInstance(path: string, config?: Record<string, string>): Promise<DuckDBInstance> {
  if (path !== ':memory:') await mkdir(dirname(path), { recursive: true })
  const instance = await DuckDBInstance.create(path, config)
  try {
    const connection = await instance.connect()
    try {
      await ensureSchema(connection)
    } finally {
      connection.closeSync()
    }
  } catch (error) {
    instance.closeSync()
    throw error
  }
  return instance
}

/** CHECKPOINT first so the next open has no WAL to replay and the file is compact. */
async function closeInstance(instance: DuckDBInstance): Promise<void> {
  const connection = await instance.connect()
  try {
    await connection.run('CHECKPOINT')
  } finally {
    connection.closeSync()
    instance.closeSync()
  }
}
