/** `consumeFrom` → the log source (loaded on demand: a Kafka consumer never loads the NATS client). */
import type { Config } from '../config/schema.ts'
import { loadNodeId } from '../dedup/node-id.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { LogSource } from './source.ts'

export async function createLogSource(config: Config, logger: Logger): Promise<LogSource> {
  const log = logger.child({ component: 'consume', log: config.consumeFrom })
  switch (config.consumeFrom) {
    case 'kafka': {
      // The node id (kept in the data directory) is the static group member id: a restarted
      // consumer takes its partitions back at once instead of after the session timeout.
      const nodeId = await loadNodeId(config.dataDir)
      return (await import('./kafka-source.ts')).createKafkaSource(config, log, `spillway-${nodeId}`)
    }
    case 'nats':
      return (await import('./nats-source.ts')).createNatsSource(config, log)
  }
}
