export {
  CURSORS_DDL,
  type DuckDbConnector,
  type DuckDbHandle,
  EVENTS_DDL,
  ensureSchema,
  openDuckDb,
} from './database.ts'
export { CHUNK_ROWS, EventChunks, EventRowError } from './event-chunks.ts'
export { DuckDbSink, type DuckDbSinkOptions } from './sink.ts'
export { isDataError, isFatalError, verdictFor } from './verdict.ts'
