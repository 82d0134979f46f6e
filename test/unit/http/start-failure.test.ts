import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import { startServer } from '../../../src/server.ts'
import { createLogger } from '../../../src/telemetry/logger.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'

test('a start the API refuses (a bad trustProxy) undoes the pipeline: its lock is free for the next start', async (t) => {
  const dataDir = await makeTempDir('spillway-start-failure-')
  t.after(() => removeTempDir(dataDir))
  const config = (trustProxy: string) =>
    loadConfig({
      env: {},
      overrides: { httpPort: 0, metricsPort: 0, host: '127.0.0.1', dataDir, logLevel: 'silent', trustProxy },
    })
  await assert.rejects(startServer(config('not an address'), createLogger('silent')), /trustProxy|address/i)
  // Before the fix the pipeline stayed open: this start failed on the data directory's lock.
  const server = await startServer(config(''), createLogger('silent'))
  await server.close()
})
