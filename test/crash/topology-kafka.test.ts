/**
 * The scale-out topology with Kafka as the log: two `serve` nodes → Kafka → one `consume` node →
 * ClickHouse, Redis shared. Every acked event is in ClickHouse exactly once — also with serve
 * node 0 and the consume node SIGKILLed mid-way and restarted (helpers/topology.ts).
 */
import { startKafka } from '../helpers/kafka.ts'
import { topologyTests } from '../helpers/topology.ts'

topologyTests(
  {
    title: 'Kafka',
    kind: 'kafka',
    start: async () => {
      const kafka = await startKafka()
      return {
        stop: () => kafka.stop(),
        env: (name) => ({
          KAFKA_BROKERS: kafka.brokers,
          KAFKA_TOPIC: `${name}-events`,
          SPILLWAY_KAFKA_GROUP: `${name}-loader`,
        }),
      }
    },
  },
  21,
)
