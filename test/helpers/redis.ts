/**
 * A real Redis for a test file: started by the project's own script (scripts/redis.sh, which
 * installs Debian's redis-server when it is missing) on a free port, data in a temp dir, stopped
 * by PID when the test file ends.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT } from './server-process.ts'

const run = promisify(execFile)
const SCRIPT = join(ROOT, 'scripts/redis.sh')

export interface RedisServer {
  readonly url: string
  readonly dir: string
  readonly port: number
  stop(): Promise<void>
  /** Stops the server but keeps its port and directory, for `start()` again (an outage). */
  pause(): Promise<void>
  start(): Promise<void>
}

export async function startRedis(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-redis-'))
  const { stdout } = await run('bash', [SCRIPT, 'start', dir], { timeout: 180_000 })
  const url = stdout.trim().split('\n').pop()!
  const port = Number(new URL(url).port)
  return {
    url,
    dir,
    port,
    pause: async () => {
      await run('bash', [SCRIPT, 'stop', dir])
    },
    start: async () => {
      await run('bash', [SCRIPT, 'start', dir, String(port)])
    },
    stop: async () => {
      await run('bash', [SCRIPT, 'stop', dir])
      await rm(dir, { recursive: true, force: true })
    },
  }
}
