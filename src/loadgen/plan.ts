/**
 * From `spillway load` flags to a LoadPlan, presets included. A preset sets the defaults and any
 * flag given beside it wins, so `--preset ramp-spike --time-scale 0.1` is a 13-second rehearsal of
 * the real thing and `--preset constant-15k --duration 10s` a shorter constant run.
 *
 * The presets reproduce the reference systems' published load tests (../shared/references):
 *   constant-15k  k6 constant-arrival-rate at 15,000 req/s (the Rust/Axum service), 60 s
 *   ramp-spike    ramp to 2,000 req/s, hold, spike to 20,000 req/s, with thresholds p95<60ms,
 *                 p99<150ms, errors<1% (the Go/Gin + Redpanda service)
 *   producer      the C++ demo's producer tool: --rate per worker, --burst events in all,
 *                 --workers concurrent senders
 */
import { parseDuration, parseStages } from './schedule.ts'
import type { LoadPlan, PayloadPlan, Stage } from './types.ts'

export const DEFAULT_URL = 'http://127.0.0.1:8080'

export const DEFAULT_PAYLOAD: PayloadPlan = {
  eventNames: [
    'page_view',
    'product_view',
    'add_to_cart',
    'checkout_started',
    'purchase',
    'search',
    'signup',
  ],
  users: 100_000,
  campaigns: 50,
  channels: ['web', 'mobile', 'api', 'email', 'push'],
  duplicateRatio: 0,
  batch: 0,
  gzip: false,
}

interface Preset {
  readonly doc: string
  readonly startRate: number
  readonly stages: readonly Stage[]
  readonly thresholds: readonly string[]
}

const s = (seconds: number) => seconds * 1000

export const PRESETS: Readonly<Record<string, Preset>> = {
  'constant-15k': {
    doc: 'k6 constant-arrival-rate: 15,000 req/s for 60 s',
    startRate: 15_000,
    stages: [{ durationMs: s(60), target: 15_000 }],
    thresholds: [],
  },
  'ramp-spike': {
    doc: 'ramp to 2,000 req/s (30 s), hold 60 s, spike to 20,000 req/s (10 s), hold 30 s, down (10 s); p95<60ms, p99<150ms, errors<1%',
    startRate: 0,
    stages: [
      { durationMs: s(30), target: 2_000 },
      { durationMs: s(60), target: 2_000 },
      { durationMs: s(10), target: 20_000 },
      { durationMs: s(30), target: 20_000 },
      { durationMs: s(10), target: 0 },
    ],
    thresholds: ['p95<60ms', 'p99<150ms', 'errors<1%'],
  },
  producer: {
    doc: 'the producer tool: --rate events/s per worker (100), --burst events in all (500), --workers senders (1)',
    startRate: 0,
    stages: [],
    thresholds: [],
  },
}

/** Every flag `spillway load` takes. */
export const LOAD_FLAGS = [
  'url',
  'preset',
  'rate',
  'duration',
  'stages',
  'start-rate',
  'time-scale',
  'connections',
  'requests',
  'burst',
  'workers',
  'timeout',
  'max-queued',
  'batch',
  'gzip',
  'duplicates',
  'event-names',
  'users',
  'campaigns',
  'channels',
  'header',
  'api-key',
  'threshold',
  'seed',
  'out',
  'html',
  'json',
  'quiet',
  'progress',
  'help',
] as const

export function planFromFlags(
  flags: Readonly<Record<string, string>>,
  lists: Readonly<Record<string, readonly string[]>> = {},
): LoadPlan {
  const unknown = Object.keys(flags).filter((f) => !(LOAD_FLAGS as readonly string[]).includes(f))
  if (unknown.length > 0) {
    throw new RangeError(
      `unknown flag${unknown.length > 1 ? 's' : ''} --${unknown.join(', --')}; see spillway load --help`,
    )
  }
  const presetName =
    flags['preset'] ??
    (flags['burst'] !== undefined || flags['workers'] !== undefined ? 'producer' : undefined)
  const preset = presetName === undefined ? undefined : PRESETS[presetName]
  if (presetName !== undefined && preset === undefined) {
    throw new RangeError(`--preset "${presetName}" is not one of ${Object.keys(PRESETS).join(', ')}`)
  }
  const payload: PayloadPlan = {
    eventNames: list(flags['event-names'], DEFAULT_PAYLOAD.eventNames, 'event-names'),
    users: int(flags, 'users', DEFAULT_PAYLOAD.users, 1),
    campaigns: int(flags, 'campaigns', DEFAULT_PAYLOAD.campaigns, 1),
    channels: list(flags['channels'], DEFAULT_PAYLOAD.channels, 'channels'),
    duplicateRatio: ratio(flags['duplicates']),
    batch: int(flags, 'batch', 0, 0),
    gzip: bool(flags, 'gzip'),
  }
  const headers: Record<string, string> = {}
  for (const header of lists['header'] ?? (flags['header'] ? [flags['header']] : [])) {
    const colon = header.indexOf(':')
    if (colon <= 0) throw new RangeError(`--header "${header}" must be "Name: value"`)
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim()
  }
  if (flags['api-key']) headers['Authorization'] = `Bearer ${flags['api-key']}`
  const thresholds = [
    ...(preset?.thresholds ?? []),
    ...(lists['threshold'] ?? (flags['threshold'] ? [flags['threshold']] : [])),
  ]
  const timeScale = num(flags, 'time-scale', 1, Number.MIN_VALUE)
  const timeoutMs = flags['timeout'] ? parseDuration(flags['timeout'], '--timeout') : 10_000
  const maxQueued = int(flags, 'max-queued', 100_000, 0)
  const base = {
    url: flags['url'] ?? DEFAULT_URL,
    timeoutMs,
    maxQueued,
    headers,
    payload,
    thresholds,
    ...(presetName ? { preset: presetName } : {}),
  }

  if (presetName === 'producer') {
    const perWorker = num(flags, 'rate', 100, Number.MIN_VALUE)
    const workers = int(flags, 'workers', 1, 1)
    const burst = int(flags, 'burst', 500, 1)
    const rate = perWorker * workers
    const durationMs = (burst / rate) * 1000
    return {
      ...base,
      model: 'open',
      startRate: rate,
      stages: [{ durationMs, target: rate }],
      durationMs,
      connections: int(flags, 'connections', workers, 1),
      maxRequests: burst,
    }
  }

  let startRate: number
  let stages: Stage[]
  if (flags['stages'] !== undefined) {
    stages = parseStages(flags['stages'])
    startRate = num(flags, 'start-rate', 0, 0)
  } else if (flags['rate'] !== undefined) {
    const rate = num(flags, 'rate', 0, Number.MIN_VALUE)
    startRate = rate
    const presetMs = preset?.stages.length === 1 ? preset.stages[0].durationMs : 30_000
    stages = [
      {
        durationMs: flags['duration'] ? parseDuration(flags['duration'], '--duration') : presetMs,
        target: rate,
      },
    ]
  } else if (preset) {
    startRate = num(flags, 'start-rate', preset.startRate, 0)
    const duration = flags['duration'] ? parseDuration(flags['duration'], '--duration') : undefined
    // A one-stage preset takes --duration; a staged one keeps its shape and takes --time-scale.
    stages = preset.stages.map((st) => ({
      ...st,
      durationMs: duration && preset.stages.length === 1 ? duration : st.durationMs,
    }))
    if (duration && preset.stages.length > 1) {
      throw new RangeError(`--duration does not apply to the staged preset ${presetName}; use --time-scale`)
    }
  } else {
    // The closed model: N connections as fast as the server answers.
    const durationMs = flags['duration'] ? parseDuration(flags['duration'], '--duration') : 30_000
    return {
      ...base,
      model: 'closed',
      startRate: 0,
      stages: [],
      durationMs: durationMs * timeScale,
      connections: int(flags, 'connections', 64, 1),
      maxRequests: int(flags, 'requests', 0, 0),
    }
  }
  stages = stages.map((st) => ({ ...st, durationMs: st.durationMs * timeScale }))
  return {
    ...base,
    model: 'open',
    startRate,
    stages,
    durationMs: stages.reduce((sum, st) => sum + st.durationMs, 0),
    connections: int(flags, 'connections', 1000, 1),
    maxRequests: int(flags, 'requests', 0, 0),
  }
}

function num(flags: Readonly<Record<string, string>>, name: string, fallback: number, min: number): number {
  const text = flags[name]
  if (text === undefined) return fallback
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || value < min) {
    throw new RangeError(`--${name} must be a number ${min > 0 ? '> 0' : '≥ 0'}, got "${text}"`)
  }
  return value
}

function int(flags: Readonly<Record<string, string>>, name: string, fallback: number, min: number): number {
  const value = num(flags, name, fallback, min)
  if (!Number.isInteger(value)) throw new RangeError(`--${name} must be a whole number, got "${flags[name]}"`)
  return value
}

function bool(flags: Readonly<Record<string, string>>, name: string): boolean {
  const text = flags[name]
  if (text === undefined || text === 'false') return false
  if (text === 'true') return true
  throw new RangeError(`--${name} takes no value (or true/false), got "${text}"`)
}

/** `0.05`, `5%`. */
function ratio(text: string | undefined): number {
  if (text === undefined) return 0
  const percent = text.trim().endsWith('%')
  const value = Number(percent ? text.trim().slice(0, -1) : text)
  const fraction = percent ? value / 100 : value
  if (!Number.isFinite(fraction) || fraction < 0 || fraction >= 1 || text.trim() === '') {
    throw new RangeError(
      `--duplicates must be a fraction in [0, 1) or a percentage below 100%, got "${text}"`,
    )
  }
  return fraction
}

function list(text: string | undefined, fallback: readonly string[], name: string): readonly string[] {
  if (text === undefined) return fallback
  const items = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
  if (items.length === 0) throw new RangeError(`--${name} needs at least one name`)
  return items
}
