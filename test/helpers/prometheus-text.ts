/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it accepts what a
 * Prometheus server accepts and throws, naming the line, on anything it would reject or that a
 * correct exporter never writes — a sample before its family's TYPE, a family split in two, a
 * series twice, a bad name, label or value, bucket counts that go down or disagree with `_count`.
 * (npm's `parse-prometheus-text-format` exists but is not a dependency of this project.)
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface Sample {
  /** The sample's own name (e.g. `x_bucket` in family `x`). */
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
  readonly timestamp?: number
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
/** What Go's strconv.ParseFloat (Prometheus' parser) takes: special values in any case. */
const FLOAT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)$/i
const SUFFIXES: Record<MetricType, readonly string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const families = new Map<string, Family>()
  const typed = new Set<string>()
  const seen = new Set<string>()
  let current: Family | undefined
  const lines = text.split('\n')
  lines.pop()
  lines.forEach((line, i) => {
    const fail = (what: string): never => {
      throw new Error(`line ${i + 1} ${JSON.stringify(line.slice(0, 120))}: ${what}`)
    }
    /** Makes `name` the current family; a family may not come back once another one started. */
    const enter = (name: string): Family => {
      if (current?.name === name) return current
      if (families.has(name)) fail(`family ${name} appears in two places`)
      current = { name, type: 'untyped', help: undefined, samples: [] }
      families.set(name, current)
      return current
    }
    if (line.trim() === '') return
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t](.*))?$/.exec(line)
      if (!m) return // a comment
      const [, keyword, name, rest = ''] = m
      if (!METRIC_NAME.test(name)) fail(`bad metric name ${name}`)
      const family = enter(name) as { type: MetricType; help: string | undefined; samples: Sample[] }
      if (keyword === 'HELP') {
        if (family.help !== undefined) fail(`second HELP for ${name}`)
        family.help = unescapeHelp(rest, fail)
      } else {
        const type = rest.trim() as MetricType
        if (!TYPES.has(type)) fail(`unknown type ${JSON.stringify(rest)}`)
        if (typed.has(name)) fail(`second TYPE for ${name}`)
        if (family.samples.length > 0) fail(`TYPE after samples of ${name}`)
        family.type = type
        typed.add(name)
      }
      return
    }
    const sample = parseSample(line, fail)
    const belongs = (f: Family) => SUFFIXES[f.type].some((suffix) => sample.name === f.name + suffix)
    let family = current && belongs(current) ? current : undefined
    if (!family) {
      for (const f of families.values()) if (belongs(f)) fail(`sample outside the group of family ${f.name}`)
      family = enter(sample.name)
    }
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`
    if (seen.has(key)) fail('series appears twice')
    seen.add(key)
    const bucket = family.type === 'histogram' && sample.name === `${family.name}_bucket`
    if (family.type === 'histogram' && bucket !== 'le' in sample.labels)
      fail(bucket ? 'bucket without le' : 'le outside a bucket')
    if (family.type === 'summary' && sample.name === family.name && !('quantile' in sample.labels))
      fail('summary sample without quantile')
    if (family.type === 'counter' && !(sample.value >= 0)) fail('counter value negative or NaN')
    family.samples.push(sample)
  })
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family)
  return families
}

function parseSample(line: string, fail: (what: string) => never): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line)
  if (!m) return fail('bad metric name')
  const name = m[1]
  let at = name.length
  const labels: Record<string, string> = {}
  if (m[2]) {
    at++
    for (;;) {
      if (line[at] === '}') {
        at++
        break
      }
      const lm = /^([^=\s]+)="/.exec(line.slice(at))
      if (!lm) fail(`bad label at column ${at + 1}`)
      const label = lm![1]
      if (!LABEL_NAME.test(label) || label.startsWith('__')) fail(`bad label name ${label}`)
      if (label in labels) fail(`label ${label} twice`)
      at += lm![0].length
      let value = ''
      for (;;) {
        const c = line[at]
        if (c === undefined) fail('unterminated label value')
        if (c === '"') break
        if (c === '\\') {
          const e = line[at + 1]
          if (e === '\\') value += '\\'
          else if (e === '"') value += '"'
          else if (e === 'n') value += '\n'
          else fail(`bad escape \\${e} in a label value`)
          at += 2
        } else {
          value += c
          at++
        }
      }
      labels[label] = value
      at++
      if (line[at] === ',') at++
      else if (line[at] !== '}') fail(`expected , or } at column ${at + 1}`)
    }
  }
  const rest = line.slice(at)
  const vm = /^ +(\S+)(?: +(-?\d+))? *$/.exec(rest)
  if (!vm) return fail('expected a value (and an optional timestamp) after the series')
  if (!FLOAT.test(vm[1])) fail(`bad value ${vm[1]}`)
  const special = vm[1].toLowerCase().replace(/^\+/, '')
  const value =
    special === 'nan'
      ? Number.NaN
      : /inf/.test(special)
        ? special.startsWith('-')
          ? Number.NEGATIVE_INFINITY
          : Number.POSITIVE_INFINITY
        : Number(vm[1])
  return vm[2] === undefined ? { name, labels, value } : { name, labels, value, timestamp: Number(vm[2]) }
}

function unescapeHelp(text: string, fail: (what: string) => never): string {
  return text.replace(/\\(.?)/g, (_, e: string) => {
    if (e === '\\') return '\\'
    if (e === 'n') return '\n'
    return fail(`bad escape \\${e} in HELP`)
  })
}

/** Buckets cumulative and ending with +Inf equal to _count, per label set. */
function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>()
  for (const s of family.samples) {
    const { le, ...rest } = s.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    const group = groups.get(key) ?? { buckets: [] }
    groups.set(key, group)
    if (s.name.endsWith('_bucket')) {
      const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le)
      if (Number.isNaN(bound)) throw new Error(`${family.name}: bad le ${le}`)
      group.buckets.push([bound, s.value])
    } else if (s.name.endsWith('_count')) group.count = s.value
    else group.sum = s.value
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`
    const b = group.buckets
    if (b.length === 0 || b[b.length - 1][0] !== Number.POSITIVE_INFINITY)
      throw new Error(`${where}: no +Inf bucket last`)
    for (let i = 1; i < b.length; i++) {
      if (!(b[i][0] > b[i - 1][0])) throw new Error(`${where}: le not increasing`)
      if (b[i][1] < b[i - 1][1]) throw new Error(`${where}: bucket counts go down`)
    }
    if (group.count === undefined || group.sum === undefined)
      throw new Error(`${where}: _sum or _count missing`)
    if (b[b.length - 1][1] !== group.count) throw new Error(`${where}: +Inf bucket ≠ _count`)
  }
}

/** The value of one series; `labels` must match exactly (all labels of the series). */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
  if (!family) return undefined
  const want = JSON.stringify(Object.entries(labels).sort())
  return family.samples.find(
    (s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want,
  )?.value
}

/** Sum of a family's samples named `name` whose labels include `labels`. */
export function sumOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
  if (!family) return 0
  return family.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
}
