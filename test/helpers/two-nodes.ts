/**
 * Traffic for multi-node dedup tests: a plan of sends in which every event goes out one to three
 * times, to either node, alone or inside NDJSON batches (a batch may even hold one event twice),
 * sent by concurrent clients that fail over to the other node when theirs does not answer — what
 * a load balancer in front of retrying SDKs produces.
 */
import assert from 'node:assert/strict'
import { mulberry32 } from '../../src/loadgen/events.ts'
import { send } from './http.ts'
import { type ServerProcess, startServerProcess } from './server-process.ts'
import { assertExactlyOnce } from './store-check.ts'
import { makeTempDir, removeTempDir } from './temp-dir.ts'
import { eventually, sleep } from './wait.ts'

export interface NodeHandle {
  readonly dataDir: string
  server: ServerProcess
  metricsUrl: string
  /** Starts the node again on the same data directory. */
  restart(): Promise<{ server: ServerProcess; metricsUrl: string }>
}

/**
 * A `spillway serve` (or `consume`) process with a data directory of its own (removed after the test), killed
 * at the end if a failed assertion left it running (its pipes would keep the test alive).
 */
export async function startNode(
  t: { after: (fn: () => Promise<void>) => void },
  env: Record<string, string>,
  command: 'serve' | 'consume' = 'serve',
): Promise<NodeHandle> {
  const dataDir = await makeTempDir('spillway-node-')
  t.after(() => removeTempDir(dataDir))
  const start = async () => {
    const server = await startServerProcess(dataDir, env, [], command)
    return { server, metricsUrl: server.metricsUrl }
  }
  const handle: NodeHandle = { dataDir, ...(await start()), restart: start }
  t.after(async () => {
    if (handle.server.proc.exitCode === null && handle.server.proc.signalCode === null) {
      handle.server.kill('SIGKILL')
      await handle.server.exited()
    }
  })
  return handle
}

/** Kills node 0 after a third of the plan and restarts it at 60 %: its clients fail over meanwhile. */
export function killAndRestartFirst(nodes: NodeHandle[]): (chaos: Chaos) => Promise<void> {
  return async ({ progress }) => {
    await progress(0.33)
    nodes[0].server.kill('SIGKILL')
    assert.equal((await nodes[0].server.exited()).signal, 'SIGKILL')
    await progress(0.6)
    Object.assign(nodes[0], await nodes[0].restart())
  }
}

/** Rows of `eventName` the nodes' GET /metrics report (each node's own store, or one shared). */
export async function storedSoFar(nodes: readonly NodeHandle[], eventName: string): Promise<number> {
  let sum = 0
  for (const n of nodes) {
    const answer = await fetch(`${n.server.url}/metrics?event_name=${eventName}`)
    sum += ((await answer.json()) as { total_events: number }).total_events
  }
  return sum
}

export interface Send {
  readonly target: number
  readonly ids: readonly string[]
  readonly batch: boolean
}

/** `unique` events named `<name>-<i>`, each sent 1–3 times to random nodes, shuffled. */
export function planSends(unique: number, name: string, seed: number, nodes = 2): Send[] {
  const rand = mulberry32(seed) // deterministic, so a failing plan can be replayed
  const copies: { id: string; target: number; batch: boolean }[] = []
  for (let i = 0; i < unique; i++) {
    const n = 1 + Math.floor(rand() * 3)
    for (let c = 0; c < n; c++) {
      copies.push({ id: `${name}-${i}`, target: Math.floor(rand() * nodes), batch: rand() < 0.7 })
    }
  }
  for (let i = copies.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[copies[i], copies[j]] = [copies[j], copies[i]]
  }
  const sends: Send[] = []
  const open = new Map<number, string[]>()
  for (const copy of copies) {
    if (!copy.batch) {
      sends.push({ target: copy.target, ids: [copy.id], batch: false })
      continue
    }
    const ids = open.get(copy.target) ?? []
    ids.push(copy.id)
    open.set(copy.target, ids)
    if (ids.length >= 1 + Math.floor(rand() * 40)) {
      sends.push({ target: copy.target, ids, batch: true })
      open.delete(copy.target)
    }
  }
  for (const [target, ids] of open) sends.push({ target, ids, batch: true })
  return sends
}

const now = Math.floor(Date.now() / 1000)

/** The same content for every copy of an event: a retry resends the very same event. */
export function eventOf(id: string): Record<string, unknown> {
  const [name, n] = [id.slice(0, id.lastIndexOf('-')), Number(id.slice(id.lastIndexOf('-') + 1))]
  return {
    event_id: id,
    event_name: name,
    channel: ['web', 'mobile', 'api'][n % 3],
    user_id: `user_${n % 500}`,
    timestamp: now - (n % 3600),
    tags: ['dedup'],
    metadata: { n },
  }
}

export interface SendOutcome {
  /** Ids of events some node acknowledged (202). */
  readonly acked: Set<string>
  readonly sent: Set<string>
  /** Event copies acknowledged (a send counted once, when it finally got its 202). */
  readonly eventsSent: number
  /** Sends that had to go to the other node. */
  readonly failovers: number
}

export interface Chaos {
  /** Resolves once this fraction of the plan has been handed to clients. */
  progress(fraction: number): Promise<void>
}

/** Runs the plan with `clients` concurrent clients; every send is retried until some node answers 202. */
export async function runSends(
  plan: readonly Send[],
  nodes: readonly NodeHandle[],
  options: { clients: number; chaos?: (chaos: Chaos) => Promise<void> },
): Promise<SendOutcome> {
  const acked = new Set<string>()
  const sent = new Set<string>()
  let eventsSent = 0
  let failovers = 0
  let next = 0
  const progress = async (fraction: number) => {
    while (next < plan.length * fraction) await sleep(5)
  }
  const deliver = async (s: Send) => {
    for (const id of s.ids) sent.add(id)
    let target = s.target
    for (let attempt = 0; ; attempt++) {
      const url = nodes[target].server.url
      try {
        const answer = s.batch
          ? await send(`${url}/events/batch`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-ndjson' },
              body: s.ids.map((id) => JSON.stringify(eventOf(id))).join('\n'),
            })
          : await send(`${url}/events`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(eventOf(s.ids[0])),
            })
        if (answer.status === 202) {
          if (s.batch) {
            assert.equal(
              answer.body.accepted + answer.body.duplicates,
              s.ids.length,
              JSON.stringify(answer.body),
            )
          }
          for (const id of s.ids) acked.add(id)
          eventsSent += s.ids.length
          return
        }
        assert.equal(answer.status, 503, `unexpected ${answer.status}: ${JSON.stringify(answer.body)}`)
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error
        // Connection refused or reset: the node is down.
      }
      failovers++
      target = (target + 1) % nodes.length
      if (attempt >= nodes.length) await sleep(Math.min(200, 10 * attempt))
      if (attempt > 2000) throw new Error(`no node accepted send ${s.ids.join(',')}`)
    }
  }
  const client = async () => {
    while (next < plan.length) await deliver(plan[next++])
  }
  const chaos = options.chaos?.({ progress })
  await Promise.all([...Array.from({ length: options.clients }, client), chaos])
  return { acked, sent, eventsSent, failovers }
}

/** Waits until `stored()` reaches `expected` rows (delivery is asynchronous). */
export async function waitForStored(stored: () => Promise<number>, expected: number, timeoutMs = 60_000) {
  let last = -1
  await eventually(
    async () => {
      last = await stored()
      return last >= expected
    },
    `${expected} rows stored (last seen ${last})`,
    timeoutMs,
  )
}

/** SIGTERM, and a clean exit: the node drained what it held. */
export async function stopNode(node: NodeHandle): Promise<void> {
  node.server.kill('SIGTERM')
  assert.deepEqual(
    await node.server.exited(),
    { code: 0, signal: null },
    `clean exit; see ${node.server.logFile}`,
  )
}

export { assertExactlyOnce as assertStoredOnce }
