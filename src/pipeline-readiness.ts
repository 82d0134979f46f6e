/**
 * The readiness of a node's pipeline (pipeline.ts), shared by `serve` (server.ts) and a cluster's
 * primary (cluster/primary.ts), which adds its workers and shards.
 */
import { join } from 'node:path'
import type { Config } from './config/schema.ts'
import { type Readiness, walWriteFailure } from './http/readiness.ts'
import type { Pipeline } from './pipeline.ts'
import { damageSummary } from './wal/damage.ts'

/**
 * What a node needs to take events and deliver them, one entry per dependency: the WAL (its
 * backlog against `maxWalBacklogBytes`), each sink (ping and breaker), and the shared dedup layer
 * (shown, never required: without it delivery goes on).
 */
export async function pipelineReadiness(pipeline: Pipeline, config: Config): Promise<Readiness> {
  const sinks = await pipeline.delivery.ready()
  // Skipped WAL damage leaves the node ready (it works); the details say how much and where it is kept.
  const damage = await damageSummary(join(config.dataDir, 'wal'), pipeline.state)
  // The node's WAL: under `--workers N` the merger writes it, so the API's own check misses it.
  const walFailure = await walWriteFailure(pipeline.wal)
  const details: Record<string, unknown> = {
    wal: {
      ok: true,
      backlogBytes: pipeline.backlogBytes(),
      limitBytes: config.maxWalBacklogBytes,
      ...(damage && { damage }),
      ...walFailure,
    },
    sinks: sinks.sinks,
    ...(sinks.dedup && { dedup: sinks.dedup }),
    ...(sinks.query && { query: sinks.query }),
  }
  if (sinks.ok && !walFailure) return { ok: true, details }
  const failing = Object.entries(sinks.sinks)
    .filter(([, s]) => !s.ok)
    .map(([name, s]) => `sink ${name}: ${s.error ?? 'not answering'}`)
  if (sinks.query && !sinks.query.ok) failing.push(sinks.query.error ?? 'the query store does not answer')
  if (walFailure) failing.unshift(walFailure.error)
  return { ok: false, error: failing.join('; '), details }
}
