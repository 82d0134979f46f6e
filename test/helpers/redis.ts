/**
 * A real Redis for a test file: started by the project's own script (scripts/redis.sh, which
 * installs Debian's redis-server when it is missing) on a free port, data in a temp dir, stopped
 * by PID when the test file ends.
 */
import { startScriptService } from './script-service.ts'

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
  const { address, ...service } = await startScriptService('redis', 180_000)
  return { url: address, ...service }
}
