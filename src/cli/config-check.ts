/**
 * `spillway config check`: everything a start would refuse about the configuration, without
 * starting — each sink's options (a sink's constructor validates them and connects to nothing),
 * the API keys and their file, the trusted proxies — then the effective configuration, secrets masked (config/mask.ts:
 * secret options as `(set)`, passwords in URLs and secret query parameters as `***`).
 */
import { maskConfig } from '../config/mask.ts'
import type { Config } from '../config/schema.ts'
import { ApiKeys } from '../http/auth.ts'
import { parseTrustProxy } from '../http/client-ip.ts'
import { checkQueryStore } from '../sinks/query-store.ts'
import { createSink } from '../sinks/registry.ts'
import { createLogger } from '../telemetry/logger.ts'

/** Throws the first problem, as the start would; returns the configuration fit to print. */
export function checkConfig(config: Config): Record<string, unknown> {
  const logger = createLogger('silent')
  for (const name of config.sinks) createSink(name, config, logger)
  checkQueryStore(config)
  new ApiKeys({ inline: config.apiKeys, file: config.apiKeysFile })
  parseTrustProxy(config.trustProxy)
  return maskConfig(config)
}
