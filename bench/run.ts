/**
 * Runs every benchmark, prints the results and writes them to bench/results/latest.json.
 *   npm run bench
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { BENCH_DIR } from './lib.ts'
import { benchNdjsonBatch } from './ndjson-batch.ts'
import { benchSingleEvent } from './single-event.ts'

const results = {
  date: new Date().toISOString(),
  single: await benchSingleEvent(),
  batch: await benchNdjsonBatch(),
}
mkdirSync(`${BENCH_DIR}results`, { recursive: true })
writeFileSync(`${BENCH_DIR}results/latest.json`, `${JSON.stringify(results, null, 2)}\n`)
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`)
process.exit(0)
