/**
 * API keys (optional). Keys are configured hashed — `<label>:<sha256 hex of the key>[:revoked]`,
 * in `apiKeys` and/or one per line in `apiKeysFile` — so the configuration never holds a usable
 * secret. A request presents its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`; the
 * key's SHA-256 is compared with every configured digest in constant time (`timingSafeEqual`, and
 * no early exit), so the answer time says nothing about how close a guess was.
 *
 * The file is re-read when its modification time or size changes (looked at most once a second,
 * on the request path: one `stat`), so keys are added and revoked without a restart. A file that
 * cannot be read or parsed, or holds no entry at all (a writer that truncated it and has not
 * written yet), keeps the keys it had last and logs why; at start an unreadable or unparsable file
 * is an error. A file changed in the last second whose last line has no newline may be half
 * written (`alice:<hash>` of `alice:<hash>:revoked`): it is read again at the next look.
 *
 * When several entries match a key, a revoked one wins: appending `alice:<hash>:revoked` revokes
 * alice's key wherever else it is listed.
 *
 * Answers: no key → 401 "missing API key"; a key no entry matches → 401 "API key not recognised";
 * a key whose entry says `revoked` → 401 naming the label. Every 401 carries
 * `WWW-Authenticate: Bearer realm="spillway"`. The label of the key (never the key) is what
 * metrics and logs show.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { spillwayError } from '../errors.ts'
import type { Logger } from '../telemetry/logger.ts'

export interface ApiKeyEntry {
  readonly label: string
  readonly digest: Buffer
  readonly revoked: boolean
}

const ENTRY = /^([A-Za-z0-9._-]{1,64}):([0-9a-fA-F]{64})(?::(revoked))?$/
const RELOAD_CHECK_MS = 1000

/** Parses `<label>:<sha256 hex>[:revoked]` entries (comma or newline separated; `#` starts a comment). */
export function parseApiKeyEntries(text: string, where: string): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = []
  const lines = text.split(/[\n,]/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/#.*/, '').trim()
    if (line === '') continue
    const match = ENTRY.exec(line)
    if (!match) {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `${where}: entry ${i + 1} is not <label>:<sha256 hex of the key>[:revoked] (got ${JSON.stringify(line.slice(0, 24))}…); make one with \`spillway apikey new --label <label>\``,
      )
    }
    entries.push({ label: match[1], digest: Buffer.from(match[2], 'hex'), revoked: match[3] === 'revoked' })
  }
  return entries
}

export function digestOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest()
}

/** A new random key and its configuration entry. */
export function newApiKey(label: string): { key: string; entry: string } {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(label)) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `label must be 1–64 of A-Z a-z 0-9 . _ -, got ${JSON.stringify(label)}`,
    )
  }
  const key = `spw_${randomBytes(32).toString('base64url')}`
  return { key, entry: `${label}:${digestOf(key).toString('hex')}` }
}

/** The key a request presents, from `Authorization: Bearer` or `X-API-Key`; undefined when none. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const direct = headers['x-api-key']
  if (typeof direct === 'string' && direct.trim() !== '') return direct.trim()
  const authorization = headers['authorization']
  if (typeof authorization === 'string') {
    const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match) return match[1]
  }
  return undefined
}

export class ApiKeys {
  readonly #inline: readonly ApiKeyEntry[]
  readonly #file: string
  readonly #logger: Logger | undefined
  #fromFile: readonly ApiKeyEntry[] = []
  #fileVersion = ''
  #checkedAt = 0

  constructor(options: { readonly inline: string; readonly file: string; readonly logger?: Logger }) {
    this.#inline = parseApiKeyEntries(options.inline, 'apiKeys')
    this.#file = options.file
    this.#logger = options.logger
    if (this.#file) this.#reload(true)
  }

  /** Whether any key is configured (the routes are open otherwise). */
  get enabled(): boolean {
    return this.#inline.length > 0 || this.#file !== ''
  }

  /** The label of the key, or throws the 401 for this request. */
  authenticate(presented: string | undefined): string {
    if (presented === undefined) {
      throw spillwayError(
        'SPW_ERR_AUTH_MISSING',
        'missing API key: send it as Authorization: Bearer <key> or X-API-Key: <key>',
      )
    }
    this.#maybeReload()
    const digest = digestOf(presented)
    let found: ApiKeyEntry | undefined
    // Every entry is compared, match or not: no early exit.
    for (const entry of this.#inline) found = matching(entry, digest, found)
    for (const entry of this.#fromFile) found = matching(entry, digest, found)
    if (!found) throw spillwayError('SPW_ERR_AUTH_INVALID', 'API key not recognised')
    if (found.revoked) throw spillwayError('SPW_ERR_AUTH_INVALID', `API key "${found.label}" was revoked`)
    return found.label
  }

  #maybeReload(): void {
    if (!this.#file) return
    const now = Date.now()
    if (now - this.#checkedAt < RELOAD_CHECK_MS) return
    this.#checkedAt = now
    this.#reload(false)
  }

  #reload(atStart: boolean): void {
    let version = 'unreadable'
    try {
      const stat = statSync(this.#file)
      version = `${stat.mtimeMs}:${stat.size}`
      if (version === this.#fileVersion) return
      const text = readFileSync(this.#file, 'utf8')
      if (!atStart && text !== '' && !text.endsWith('\n') && Date.now() - stat.mtimeMs < RELOAD_CHECK_MS)
        return
      const entries = parseApiKeyEntries(text, this.#file)
      if (entries.length === 0 && !atStart) {
        throw new Error(
          `has no entries (${text.trim() === '' ? 'empty' : 'comments only'}); keeping the ${this.#fromFile.length} keys read last — to revoke a key, end its line with :revoked`,
        )
      }
      this.#fromFile = entries
      this.#fileVersion = version
      if (!atStart) this.#logger?.info({ file: this.#file, keys: this.#fromFile.length }, 'ApiKeysReloaded')
    } catch (error) {
      if (atStart) {
        throw spillwayError(
          'SPW_ERR_CONFIG_INVALID',
          `apiKeysFile ${this.#file}: ${(error as Error).message}`,
        )
      }
      // Logged once per change of the file; the keys read last stay in force meanwhile.
      if (version === this.#fileVersion) return
      this.#fileVersion = version
      this.#logger?.warn(
        { file: this.#file, reason: (error as Error).message, keptKeys: this.#fromFile.length },
        'ApiKeysReloadFailed',
      )
    }
  }
}

/** The entry that decides for `digest` so far: the first match, unless a later match is revoked. */
function matching(
  entry: ApiKeyEntry,
  digest: Buffer,
  found: ApiKeyEntry | undefined,
): ApiKeyEntry | undefined {
  // Compared whatever `found` is: no early exit.
  if (!timingSafeEqual(entry.digest, digest)) return found
  return found === undefined || (entry.revoked && !found.revoked) ? entry : found
}
