/**
 * A real Redis for a test file: started by the project's own script (scripts/redis.sh, which
 * installs Debian's redis-server when it is missing) on a free port, data in a temp dir, stopped
 * by PID when the test file ends.
 */
import { type ScriptService, startScriptService } from './script-service.ts'

/** A private Redis (scripts/redis.sh): its URL, and pause/start for an outage. */
export type RedisServer = Omit<ScriptService, 'address'> & { readonly url: string }

export async function startRedis(): Promise<RedisServer> {
  const { address, ...service } = await startScriptService('redis', 180_000)
  return { url: address, ...service }
}
