/**
 * How to reach the NATS servers and the JetStream stream — for the `nats` sink and the NATS source
 * of `spillway consume` alike — out of the server's configuration (`natsUrl`, `natsStream`,
 * `natsSubject`, `natsDuplicateWindowSeconds`, `natsTimeoutMs`; `natsConsumer` is checked here too).
 *
 * `natsUrl` is a comma list of `nats://[user:pass@]host:port` (or `host:port`); the client takes
 * credentials as options, not inside the server list, so they are lifted out here (`user:pass@`
 * → user and password, a lone `token@` → token) and never appear in logs or errors.
 */
import { maskUrl } from '../../config/mask.ts'
import type { Config } from '../../config/schema.ts'
import { spillwayError } from '../../errors.ts'

/** Where the stream lives and how to reach it: shared by the sink and the consume source. */
export interface NatsStreamOptions {
  /** `host:port` of each server, without credentials. */
  readonly servers: readonly string[]
  readonly user?: string
  readonly pass?: string
  readonly token?: string
  /** The JetStream stream (created if missing: file storage, `subjects: [subject]`). */
  readonly stream: string
  /** The subject events are published to; the stream must capture it. */
  readonly subject: string
  /** `duplicate_window` of a stream Spillway creates: JetStream drops a `Nats-Msg-Id` seen within it. */
  readonly duplicateWindowMs: number
  /** Bound of a connection attempt, of every JetStream API request and of a publish's ack. */
  readonly timeoutMs: number
}

/** Connection and stream options; `who` names the part that needs them in the error. */
export function natsStreamOptions(config: Config, who: string): NatsStreamOptions {
  if (!config.natsUrl.trim()) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `${who} needs a server: set natsUrl (NATS_URL, --nats-url), e.g. nats://127.0.0.1:4222`,
    )
  }
  return {
    ...parseNatsUrl(config.natsUrl),
    stream: checkName('natsStream', config.natsStream),
    subject: checkSubject(config.natsSubject),
    duplicateWindowMs: config.natsDuplicateWindowSeconds * 1000,
    timeoutMs: config.natsTimeoutMs,
  }
}

/** `nats://u:p@a:4222,b:4222` → servers `a:4222`, `b:4222` and the credentials of the first URL that has them. */
export function parseNatsUrl(text: string): Pick<NatsStreamOptions, 'servers' | 'user' | 'pass' | 'token'> {
  const servers: string[] = []
  let credentials: { user?: string; pass?: string; token?: string } = {}
  for (const entry of text.split(',')) {
    const trimmed = entry.trim()
    if (!trimmed) continue
    let url: URL
    try {
      url = new URL(trimmed.includes('://') ? trimmed : `nats://${trimmed}`)
    } catch {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `option natsUrl: not a server address: ${JSON.stringify(maskUrl(trimmed))}`,
      )
    }
    if (url.protocol !== 'nats:' && url.protocol !== 'tls:') {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `option natsUrl: expected nats://host:port, got ${url.protocol}`,
      )
    }
    if (!url.hostname) {
      throw spillwayError('SPW_ERR_CONFIG_INVALID', `option natsUrl: no host in ${JSON.stringify(url.host)}`)
    }
    if (url.username && credentials.user === undefined && credentials.token === undefined) {
      const user = decodeURIComponent(url.username)
      credentials = url.password ? { user, pass: decodeURIComponent(url.password) } : { token: user }
    }
    servers.push(`${url.hostname.includes(':') ? `[${url.hostname}]` : url.hostname}:${url.port || 4222}`)
  }
  if (servers.length === 0) throw spillwayError('SPW_ERR_CONFIG_INVALID', 'option natsUrl: no server in it')
  return { servers, ...credentials }
}

/** Stream and consumer names: JetStream refuses whitespace, `.`, `*`, `>` and path separators. */
export function checkName(option: string, name: string): string {
  if (!name || /[\s.*>/\\]/.test(name)) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option ${option}: ${JSON.stringify(name)} is not a JetStream name (no whitespace, '.', '*', '>', '/' or '\\')`,
    )
  }
  return name
}

/** A subject to publish to: dot-separated non-empty tokens, no wildcards, no whitespace. */
export function checkSubject(subject: string): string {
  const tokens = subject.split('.')
  if (!subject || tokens.some((t) => t === '' || t === '*' || t === '>' || /\s/.test(t))) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option natsSubject: ${JSON.stringify(subject)} is not a subject to publish to (dot-separated tokens, no wildcards, no whitespace)`,
    )
  }
  return subject
}

/** Servers for logs and errors: `nats://a:4222,b:4222`, never with credentials. */
export function where(options: Pick<NatsStreamOptions, 'servers'>): string {
  return `nats://${options.servers.join(',')}`
}
