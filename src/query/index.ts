export { DuckDbQueryBackend, sqlFor } from './duckdb.ts'
export type { GroupBy, MetricsQuery, MetricsRow, QueryBackend, Totals } from './types.ts'
