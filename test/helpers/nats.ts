/**
 * A real NATS server with JetStream for a test file: started by the project's own script
 * (scripts/nats.sh, which installs Debian's nats-server when it is missing) on a free port, the
 * JetStream store in a temp dir, stopped by PID when the test file ends. `pause()` + `start()`
 * restart the same server (same port, same store: the streams and their messages survive).
 * Plus what tests read back: every message of a stream with its headers, counts, stream info.
 */
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StreamInfo,
} from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'

import { type ScriptService, startScriptService } from './script-service.ts'

/** A private nats-server -js (scripts/nats.sh): its URL, and pause/start for a restart. */
export type NatsServer = Omit<ScriptService, 'address'> & { readonly url: string }

export async function startNats(): Promise<NatsServer> {
  const { address, ...service } = await startScriptService('nats', 180_000)
  return { url: address, ...service }
}

/** A connection for the length of `fn`. */
export async function withNats<T>(
  url: string,
  fn: (clients: { nc: NatsConnection; jsm: JetStreamManager; js: JetStreamClient }) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers: url, noAsyncTraces: true })
  try {
    const jsm = await jetstreamManager(nc, { timeout: 10_000 })
    return await fn({ nc, jsm, js: jetstream(nc, { timeout: 10_000 }) })
  } finally {
    await nc.close()
  }
}

/** The stream's info, or null when there is no such stream. */
export function streamInfo(url: string, stream: string): Promise<StreamInfo | null> {
  return withNats(url, async ({ jsm }) => {
    const names: string[] = []
    for await (const name of jsm.streams.names()) names.push(name)
    return names.includes(stream) ? jsm.streams.info(stream) : null
  })
}

/** Messages in the stream (0 when there is no stream). */
export async function messageCount(url: string, stream: string): Promise<number> {
  return (await streamInfo(url, stream))?.state.messages ?? 0
}

export interface StoredMessage {
  readonly seq: number
  readonly subject: string
  /** The `Nats-Msg-Id` header. */
  readonly msgId: string | undefined
  readonly data: Buffer
}

/** Every message of the stream, in sequence order, read with an ordered (ephemeral) consumer. */
export function readStream(url: string, stream: string): Promise<StoredMessage[]> {
  return withNats(url, async ({ jsm, js }) => {
    const info = await jsm.streams.info(stream)
    const out: StoredMessage[] = []
    if (info.state.messages === 0) return out
    const consumer = await js.consumers.get(stream)
    const messages = await consumer.consume({ max_messages: 1000 })
    for await (const m of messages) {
      out.push({
        seq: m.seq,
        subject: m.subject,
        msgId: m.headers?.get('Nats-Msg-Id') || undefined,
        data: Buffer.from(m.data),
      })
      if (m.seq >= info.state.last_seq) break
    }
    await messages.close()
    return out
  })
}

/** The JSON payloads of the stream's messages. */
export async function readEvents(url: string, stream: string): Promise<Record<string, unknown>[]> {
  return (await readStream(url, stream)).map((m) => JSON.parse(m.data.toString()))
}

let streams = 0
/** A stream name no other test of the run uses. */
export function uniqueStream(prefix = 'T'): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${++streams}`
}
