/**
 * The delivery thread's entry point: a DeliveryService behind the message port (protocol.ts).
 * It logs with its own pino (same level as the server, synchronous so nothing is lost when the
 * thread exits) and ends itself once stopped.
 */
import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { createLogger } from '../telemetry/logger.ts'
import { WalSharedState } from '../wal/shared-state.ts'
import {
  type CallRequest,
  type DeliveryWorkerData,
  type HostMessage,
  serializeError,
  type WorkerMessage,
} from './protocol.ts'
import { DeliveryService } from './service.ts'

const port = parentPort
if (!port) throw new Error('src/delivery/worker.ts runs as a worker thread (see DeliveryHost)')
const data = workerData as DeliveryWorkerData
const logger = createLogger(data.config.logLevel, {
  format: data.config.logFormat,
  sync: true,
  base: { thread: 'delivery' },
})

const post = (message: WorkerMessage) => port.postMessage(message)

// Below the HTTP thread in the kernel's eyes (Linux nice values are per thread, and threads a
// store starts from here inherit it): in a spike the CPU answers requests first and the WAL holds
// what delivery has not caught up with yet; with a spare core delivery runs at full speed.
if (data.config.deliveryNice > 0) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    if (Number.isSafeInteger(tid)) setPriority(tid, data.config.deliveryNice)
  } catch (error) {
    logger.debug({ err: error }, 'DeliveryNiceUnavailable')
  }
}

let service: DeliveryService
try {
  service = await DeliveryService.start({
    config: data.config,
    state: new WalSharedState(data.stateBuffer),
    logger,
    maxRecordBytes: data.maxRecordBytes,
  })
} catch (error) {
  logger.error({ err: error }, 'DeliveryStartFailed')
  post({ type: 'startFailed', error: serializeError(error) })
  process.exit(1)
}
post({ type: 'started', cursors: service.cursors() })

port.on('message', (message: HostMessage) => {
  if (message.type === 'stop') {
    service.stop({ drain: message.drain }).then(
      () => {
        post({ type: 'reply', id: message.id, ok: true, value: null })
        process.exit(0)
      },
      (error) => {
        logger.error({ err: error }, 'DeliveryStopFailed')
        post({ type: 'reply', id: message.id, ok: false, error: serializeError(error) })
        process.exit(1)
      },
    )
    return
  }
  call(message).then(
    (value) => post({ type: 'reply', id: message.id, ok: true, value }),
    (error) => post({ type: 'reply', id: message.id, ok: false, error: serializeError(error) }),
  )
})

function call(request: CallRequest): Promise<unknown> {
  switch (request.method) {
    case 'totals':
      return service.totals(request.args)
    case 'groups':
      return service.groups(request.args)
    case 'topEvents':
      return service.topEvents(request.args)
    case 'series':
      return service.series(request.args)
    case 'ready':
      return service.ready(request.args.timeoutMs)
    case 'stats':
      return Promise.resolve(service.stats())
  }
}
