import type { TestContext } from 'node:test'
import { loadConfig } from '../../src/config/load.ts'
import type { OptionName } from '../../src/config/schema.ts'
import { type RunningServer, startServer } from '../../src/server.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { makeTempDir, removeTempDir } from './temp-dir.ts'

/** The whole server in this process (real WAL, real delivery thread, real DuckDB), on a free port. */
export async function startTestServer(
  t: TestContext | { after: (fn: () => Promise<void>) => void },
  overrides: Partial<Record<OptionName, unknown>> = {},
): Promise<RunningServer & { dataDir: string }> {
  const dataDir = await makeTempDir('spillway-test-')
  const config = loadConfig({
    env: {},
    overrides: {
      httpPort: 0,
      metricsPort: 0,
      host: '127.0.0.1',
      dataDir,
      logLevel: 'silent',
      // The test's own client runs on the server's event loop here, so the loop's delay measures the
      // test as much as the server: no shedding on it unless a test asks (server-process tests keep it).
      admissionTargetDelayMs: 0,
      ...overrides,
    },
  })
  const server = await startServer(config, createLogger(config.logLevel))
  t.after(async () => {
    await server.close()
    await removeTempDir(dataDir)
  })
  return Object.assign(server, { dataDir })
}
