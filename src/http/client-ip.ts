/**
 * Who the client is, for rate limits, when Spillway runs behind a load balancer (`trustProxy`).
 *
 * Off (the default), the client is the socket's peer and `X-Forwarded-For` is ignored: anyone may
 * write that header. With `trustProxy` a list of addresses / CIDRs (or `loopback`, `linklocal`,
 * `uniquelocal`), the addresses of `X-Forwarded-For` are read from the right, skipping every
 * trusted one; the first untrusted address is the client. With a hop count `n`, the n nearest hops
 * (the peer, then the rightmost entries) are trusted whatever they are. These are the semantics of
 * fastify's `trustProxy` (proxy-addr); the fastify routes get `trusts` as their `trustProxy`
 * function, so the ingest routes (bare node:http) and the fastify routes name the same client.
 */
import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'
import { spillwayError } from '../errors.ts'

/** The networks proxy-addr knows by name. */
const NAMED: Record<string, readonly string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

export interface TrustedProxies {
  /** Whether the hop-th address from the peer (the peer is 0) is a trusted proxy: fastify's `trustProxy`. */
  trusts(address: string, hop: number): boolean
  /** The client's address for a raw request. */
  clientIp(request: IncomingMessage): string
}

/**
 * `trustProxy` as configured: '' (off) → undefined; a whole number → hop count; else a comma list
 * of addresses, CIDRs and network names. Throws naming the option and the bad entry.
 */
export function parseTrustProxy(value: string): TrustedProxies | undefined {
  const text = value.trim()
  if (text === '' || text === 'false') return undefined
  if (/^\d+$/.test(text)) {
    const hops = Number(text)
    if (hops === 0) return undefined
    const trusts = (_address: string, hop: number) => hop < hops
    return { trusts, clientIp: (request) => resolve(request, trusts) }
  }
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
  const list = new BlockList()
  for (const entry of entries) {
    for (const network of NAMED[entry] ?? [entry]) addNetwork(list, network, entry)
  }
  const trusts = (address: string) => contains(list, address)
  return { trusts, clientIp: (request) => resolve(request, trusts) }
}

/** proxy-addr's walk: from the peer leftwards through X-Forwarded-For while the hop is trusted. */
function resolve(request: IncomingMessage, trusted: (address: string, hop: number) => boolean): string {
  const peer = request.socket.remoteAddress ?? ''
  const header = request.headers['x-forwarded-for']
  if (!trusted(peer, 0) || header === undefined) return peer
  const forwarded = (Array.isArray(header) ? header.join(',') : header).split(',')
  let client = peer
  for (let hop = 1, i = forwarded.length - 1; i >= 0; hop++, i--) {
    const address = forwarded[i].trim()
    if (address === '') continue
    client = address
    if (!trusted(address, hop)) break
  }
  return client
}

function addNetwork(list: BlockList, network: string, entry: string): void {
  const slash = network.indexOf('/')
  const address = slash < 0 ? network : network.slice(0, slash)
  const family = isIP(address)
  const prefix = slash < 0 ? (family === 6 ? 128 : 32) : Number(network.slice(slash + 1))
  if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `option trustProxy: ${JSON.stringify(entry)} is not an IP address, a CIDR (10.0.0.0/8), loopback, linklocal, uniquelocal or a hop count`,
    )
  }
  list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4')
}

function contains(list: BlockList, address: string): boolean {
  // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; IPv4 networks must match it.
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
  const family = isIP(plain)
  return family !== 0 && list.check(plain, family === 6 ? 'ipv6' : 'ipv4')
}
