/**
 * A real service for a test file, started by the project's own script (`scripts/<name>.sh start
 * <dir> [port]`, which installs what is missing and prints the address on its last line) on a
 * free port, data in a temp dir, stopped by PID when the test file ends. `pause()` stops it but
 * keeps its port and data, so `start()` brings the same server back (an outage, a restart).
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './server-process.ts'
import { makeTempDir, removeTempDir } from './temp-dir.ts'

const run = promisify(execFile)

export interface ScriptService {
  /** What the script printed: a URL, or `host:port`. */
  readonly address: string
  readonly dir: string
  readonly port: number
  stop(): Promise<void>
  pause(): Promise<void>
  start(): Promise<void>
}

export async function startScriptService(
  name: 'redis' | 'nats' | 'kafka',
  timeoutMs: number,
): Promise<ScriptService> {
  const script = join(ROOT, `scripts/${name}.sh`)
  const dir = await makeTempDir(`spillway-${name}-`)
  let stdout: string
  try {
    ;({ stdout } = await run('bash', [script, 'start', dir], { timeout: timeoutMs }))
  } catch (error) {
    // A start that failed half-way may have left a process behind.
    await run('bash', [script, 'stop', dir]).catch(() => {})
    await removeTempDir(dir)
    throw error
  }
  const address = stdout.trim().split('\n').pop()!
  const port = Number(address.split(':').pop())
  return {
    address,
    dir,
    port,
    pause: async () => {
      await run('bash', [script, 'stop', dir])
    },
    start: async () => {
      await run('bash', [script, 'start', dir, String(port)], { timeout: timeoutMs })
    },
    stop: async () => {
      await run('bash', [script, 'stop', dir])
      await removeTempDir(dir)
    },
  }
}
