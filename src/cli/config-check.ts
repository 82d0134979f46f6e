/**
 * `spillway config check`: everything a start would refuse about the configuration, without
 * starting — each sink's options (a sink's constructor validates them and connects to nothing),
 * the API keys and their file — then the effective configuration, secrets masked.
 */
import type { Config } from '../config/schema.ts'
import { ApiKeys } from '../http/auth.ts'
import { createSink } from '../sinks/registry.ts'
import { createLogger } from '../telemetry/logger.ts'

/** Options whose values are secrets: shown as `(set)` or `(not set)`. */
const SECRETS = [
  'kafkaPassword',
  'clickhousePassword',
  'httpSinkHeaders',
] as const satisfies readonly (keyof Config)[]

/** Throws the first problem, as the start would; returns the configuration fit to print. */
export function checkConfig(config: Config): Record<string, unknown> {
  const logger = createLogger('silent')
  for (const name of config.sinks) createSink(name, config, logger)
  new ApiKeys({ inline: config.apiKeys, file: config.apiKeysFile })
  const shown: Record<string, unknown> = { ...config }
  for (const name of SECRETS) shown[name] = config[name] ? '(set)' : '(not set)'
  // A URL may carry a password: user:password@host.
  for (const name of ['clickhouseUrl', 'redisUrl', 'natsUrl', 'httpSinkUrl'] as const) {
    shown[name] = String(config[name]).replace(/\/\/([^:@/]+):[^@/]*@/g, '//$1:***@')
  }
  return shown
}
