/**
 * The scale-out topology with NATS JetStream as the log: two `serve` nodes → JetStream → one
 * `consume` node → ClickHouse, Redis shared. Every acked event is in ClickHouse exactly once —
 * also with serve node 0 and the consume node SIGKILLed mid-way and restarted (helpers/topology.ts).
 */
import { startNats } from '../helpers/nats.ts'
import { topologyTests } from '../helpers/topology.ts'

topologyTests(
  {
    title: 'JetStream',
    kind: 'nats',
    start: async () => {
      const nats = await startNats()
      return {
        stop: () => nats.stop(),
        env: (name) => ({
          NATS_URL: nats.url,
          SPILLWAY_NATS_STREAM: name.toUpperCase(),
          SPILLWAY_NATS_SUBJECT: `${name}.events`,
          SPILLWAY_NATS_CONSUMER: `${name}_loader`,
        }),
      }
    },
  },
  11,
)
