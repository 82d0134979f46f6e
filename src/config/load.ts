import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { spillwayError } from '../errors.ts'
import { maskUrls } from './mask.ts'
import { type Config, OPTIONS, type OptionName, type OptionSpec } from './schema.ts'

export interface ConfigSources {
  /** Parsed `--flag value` pairs, keyed by flag name without dashes. */
  readonly flags?: Readonly<Record<string, string>>
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Path of a JSON or YAML file; defaults to `SPILLWAY_CONFIG` / `--config`. */
  readonly file?: string
  /** Values set by code (tests); they win over everything. */
  readonly overrides?: Partial<Record<OptionName, unknown>>
}

type Raw = { value: unknown; source: string }

/**
 * Merge defaults < file < env < flags < overrides, validate every option once, freeze.
 * Throws SPW_ERR_CONFIG_INVALID naming every bad option and where its value came from.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env
  const flags = sources.flags ?? {}
  const raw = new Map<OptionName, Raw>()
  const problems: string[] = []

  const knownFlags = new Set(['config', ...Object.values(OPTIONS).map((o) => o.flag)])
  for (const flag of Object.keys(flags)) {
    if (!knownFlags.has(flag)) problems.push(`unknown flag --${flag}`)
  }

  const file = sources.file ?? flags['config'] ?? env['SPILLWAY_CONFIG']
  if (file) {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      if (!(key in OPTIONS)) problems.push(`unknown option "${key}" in ${file}`)
      else raw.set(key as OptionName, { value, source: file })
    }
  }
  for (const [name, spec] of entries()) {
    for (const envName of spec.env) {
      const value = env[envName]
      if (value !== undefined && value !== '') raw.set(name, { value, source: `env ${envName}` })
    }
    const flag = flags[spec.flag]
    if (flag !== undefined) raw.set(name, { value: flag, source: `--${spec.flag}` })
    const override = sources.overrides?.[name]
    if (override !== undefined) raw.set(name, { value: override, source: 'override' })
  }

  const config: Record<string, unknown> = {}
  for (const [name, spec] of entries()) {
    const given = raw.get(name)
    if (!given) {
      config[name] = spec.default
      continue
    }
    const result = coerce(spec, given.value)
    if (typeof result === 'object' && result !== null && 'problem' in result) {
      problems.push(`option ${name} (${given.source}): ${result.problem}`)
    } else {
      config[name] = result
    }
  }
  if (problems.length > 0) {
    throw spillwayError('SPW_ERR_CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`)
  }
  return Object.freeze(config) as Config
}

function entries(): [OptionName, OptionSpec][] {
  return Object.entries(OPTIONS) as [OptionName, OptionSpec][]
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `cannot read config file ${path}: ${(error as Error).message}`,
    )
  }
  let parsed: unknown
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
  } catch (error) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `config file ${path} is not valid: ${(error as Error).message}`,
    )
  }
  if (parsed === null || parsed === undefined) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw spillwayError('SPW_ERR_CONFIG_INVALID', `config file ${path} must hold an object of options`)
  }
  return parsed as Record<string, unknown>
}

type Coerced = string | number | boolean | readonly string[] | { problem: string }

function coerce(spec: OptionSpec, value: unknown): Coerced {
  switch (spec.type) {
    case 'int': {
      const n =
        typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : Number.NaN
      if (!Number.isSafeInteger(n)) return { problem: `expected an integer, got ${JSON.stringify(value)}` }
      if (spec.min !== undefined && n < spec.min) return { problem: `must be ≥ ${spec.min}, got ${n}` }
      if (spec.max !== undefined && n > spec.max) return { problem: `must be ≤ ${spec.max}, got ${n}` }
      return n
    }
    case 'bool': {
      if (typeof value === 'boolean') return value
      if (value === 'true' || value === '1') return true
      if (value === 'false' || value === '0') return false
      return { problem: `expected true or false, got ${JSON.stringify(value)}` }
    }
    case 'enum': {
      if (typeof value !== 'string' || !spec.values!.includes(value)) {
        return { problem: `expected one of ${spec.values!.join(', ')}, got ${JSON.stringify(value)}` }
      }
      return value
    }
    case 'list': {
      const items =
        typeof value === 'string'
          ? value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : Array.isArray(value) && value.every((v) => typeof v === 'string')
            ? value
            : null
      if (!items || items.length === 0)
        return { problem: `expected a non-empty comma list, got ${JSON.stringify(value)}` }
      const unknown = spec.values ? items.filter((i) => !spec.values!.includes(i)) : []
      if (unknown.length > 0)
        return { problem: `unknown value ${unknown.join(', ')}; known: ${spec.values!.join(', ')}` }
      if (new Set(items).size !== items.length) return { problem: `lists a value twice: ${items.join(',')}` }
      return Object.freeze([...items])
    }
    case 'string': {
      if (typeof value !== 'string') return { problem: `expected a string, got ${JSON.stringify(value)}` }
      if (spec.pattern && !new RegExp(spec.pattern.source).test(value)) {
        return { problem: `expected ${spec.pattern.means}, got ${JSON.stringify(maskUrls(value))}` }
      }
      return value
    }
  }
}
