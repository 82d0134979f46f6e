/**
 * Secrets out of configuration values before they are printed (`config check`, error messages).
 *
 * A URL's userinfo loses its password (`redis://:***@host`, `http://app:***@host`; a userinfo of a
 * name alone, often a token, becomes `***@`), and query parameters named like a secret (token,
 * password, secret, key, sig, auth, credential) lose their values. A password may hold `@` or `/`
 * unencoded, which no parser reads back as its author meant, so when the URL parser finds a
 * userinfo, or cannot parse the URL at all, the userinfo is taken to run to the last `@`: that
 * over-masks a URL with an `@` in its path, never under-masks one. The rest of the text is kept
 * byte for byte (no re-serialisation, no added `/`).
 */

/** Query parameter names whose values are secrets. */
const SECRET_PARAM = /token|passw|pwd|secret|key|sig|auth|credential|session/i
/** Options whose whole value is a secret, by name. */
export const SECRET_OPTION = /password|secret|token|headers|credential|apikey$/i
/** Options whose values are URLs or lists of addresses that may carry credentials, by name. */
export const ADDRESS_OPTION = /url|urls|brokers/i

const MASK = '***'

/** One URL (or `user:pass@host:port` address) with its secrets masked. */
export function maskUrl(value: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value)?.[0] ?? ''
  const rest = value.slice(scheme.length)
  const at = rest.lastIndexOf('@')
  let userinfo: string | undefined
  if (at >= 0) {
    let parsed: URL | undefined
    try {
      parsed = scheme ? new URL(value) : undefined
    } catch {}
    // Parsed without credentials: the `@` belongs to the path or the query (`?owner=ops@example.com`).
    const credentials = parsed === undefined || `${parsed.username}${parsed.password}` !== ''
    if (credentials) userinfo = rest.slice(0, at)
  }
  const address = userinfo === undefined ? rest : rest.slice(at + 1)
  return scheme + (userinfo === undefined ? '' : maskUserinfo(userinfo)) + maskQuery(address)
}

/** Every URL of a comma list (`natsUrl`, `kafkaBrokers`) masked. */
export function maskUrls(value: string): string {
  if (!value.includes('@') && !value.includes('?')) return value
  return value
    .split(',')
    .map((part) => {
      const lead = /^\s*/.exec(part)![0]
      return lead + maskUrl(part.slice(lead.length))
    })
    .join(',')
}

/** A copy of `config` fit to print: secret options as `(set)` / `(not set)`, addresses masked. */
export function maskConfig(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const shown: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(config)) {
    if (SECRET_OPTION.test(name)) shown[name] = value ? '(set)' : '(not set)'
    else if (typeof value === 'string' && (ADDRESS_OPTION.test(name) || value.includes('://')))
      shown[name] = maskUrls(value)
    else shown[name] = value
  }
  return shown
}

function maskUserinfo(userinfo: string): string {
  const colon = userinfo.indexOf(':')
  return `${colon >= 0 ? `${userinfo.slice(0, colon)}:` : ''}${MASK}@`
}

function maskQuery(address: string): string {
  const question = address.indexOf('?')
  if (question < 0) return address
  const hash = address.indexOf('#', question)
  const end = hash < 0 ? address.length : hash
  const query = address
    .slice(question + 1, end)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      return eq >= 0 && SECRET_PARAM.test(decodeName(name)) ? `${name}=${MASK}` : pair
    })
    .join('&')
  return `${address.slice(0, question + 1)}${query}${address.slice(end)}`
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '))
  } catch {
    return name
  }
}
