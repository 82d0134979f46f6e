/**
 * The composition root of `serve`: recover the WAL and start delivery (pipeline.ts), then open
 * the API — only then, so a 202 is never given before recovery finished. Shutdown runs the same
 * way backwards: stop accepting, flush the WAL, drain delivery, exit.
 */
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Config } from './config/schema.ts'
import { listenAddress, type OperationsServer, startOperationsServer } from './dashboard/operations-server.ts'
import type { DeliveryHost } from './delivery/host.ts'
import type { Admission } from './http/admission.ts'
import { type Api, openApi } from './http/api.ts'
import { openPipeline } from './pipeline.ts'
import { pipelineReadiness } from './pipeline-readiness.ts'
import type { Logger } from './telemetry/logger.ts'
import type { ServerMetrics } from './telemetry/metrics.ts'
import type { WalWriter } from './wal/writer.ts'

export interface RunningServer {
  readonly app: FastifyInstance
  readonly wal: WalWriter
  readonly delivery: DeliveryHost
  /** The bound API address, e.g. http://127.0.0.1:8080 */
  readonly url: string
  /** The operations port (Prometheus `GET /metrics`), e.g. http://127.0.0.1:9464 */
  readonly metricsUrl: string
  readonly metrics: ServerMetrics
  readonly admission: Admission
  /** Stop accepting, flush, drain delivery (bounded by shutdownTimeoutMs). */
  close(): Promise<void>
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const pipeline = await openPipeline(config, logger)
  const { delivery, wal } = pipeline
  let api: Api
  try {
    api = await openApi({
      config,
      logger,
      wal,
      walBacklogBytes: pipeline.backlogBytes,
      deliveredPosition: pipeline.deliveredPosition,
      sources: pipeline.metricSources,
      query: delivery,
      dependencies: () => pipelineReadiness(pipeline, config),
    })
  } catch (error) {
    // An option only the API checks (e.g. a bad trustProxy): undo the pipeline, or its delivery
    // thread and lock would keep the process alive after the error.
    await pipeline.abort()
    throw error
  }
  const { app, metrics, admission } = api

  let operations: OperationsServer | undefined
  let address: string
  try {
    operations = await startOperationsServer({
      host: config.metricsHost,
      port: config.metricsPort,
      metrics,
      logger,
      // The dashboard's sources (README "Operations port"): /ready, sink details, event queries.
      readiness: api.readiness,
      sinkDetails: async () => (await delivery.stats()).sinks,
      explore: delivery,
      apiKeys: { inline: config.apiKeys, file: config.apiKeysFile },
    })
    await app.listen({ port: config.httpPort, host: config.host })
    address = listenAddress(app.server.address() as AddressInfo)
  } catch (error) {
    // A port in use: undo the start, so the process can exit with the error.
    await operations?.close()
    await app.close()
    await pipeline.abort()
    throw error
  }
  // `address` and `metricsAddress` are what the kernel bound (0.0.0.0 is every interface); the
  // URLs are for a client on this machine.
  const url = localUrl(`http://${address}`)
  const metricsUrl = operations.url
  logger.info(
    {
      url,
      address,
      metricsUrl,
      metricsAddress: operations.address,
      sinks: config.sinks,
      ack: config.ack,
      dataDir: config.dataDir,
      workers: 1,
    },
    'ServerStarted',
  )

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      await api.close()
      await pipeline.stop()
      // Last: the operations port stays up while the drain runs, so it can be watched.
      await operations.close()
      pipeline.release()
      logger.info('ServerStopped')
    })()
    return closing
  }
  return { app, wal, delivery, url, metricsUrl, metrics, admission, close }
}

/** A listen address as a URL a client on this machine can use. */
export function localUrl(address: string): string {
  return address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1')
}
