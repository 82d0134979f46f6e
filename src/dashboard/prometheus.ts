/**
 * A small reader of the Prometheus text exposition (format 0.0.4) the operations port renders: the
 * dashboard's feed samples it once a second, so it reads samples only (HELP and TYPE lines are
 * skipped) and keeps them by sample name. It trusts its input — our own renderer — but never throws
 * on a line it does not understand: it skips it.
 */

export interface Series {
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Samples by their own name (`x_bucket`, `x_sum`, `x_count` apart). */
export type Exposition = ReadonlyMap<string, readonly Series[]>

export function parseExposition(text: string): Exposition {
  const out = new Map<string, Series[]>()
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    if (end > start && text.charCodeAt(start) !== 35 /* # */) parseLine(text, start, end, out)
    start = end + 1
  }
  return out
}

function parseLine(text: string, start: number, end: number, out: Map<string, Series[]>): void {
  let at = start
  while (at < end) {
    const c = text.charCodeAt(at)
    if (c === 123 /* { */ || c === 32 /* space */) break
    at++
  }
  const name = text.slice(start, at)
  if (name === '') return
  const labels: Record<string, string> = {}
  if (text.charCodeAt(at) === 123) {
    at++
    while (at < end && text.charCodeAt(at) !== 125 /* } */) {
      const eq = text.indexOf('="', at)
      if (eq === -1 || eq >= end) return
      const label = text.slice(at, eq)
      at = eq + 2
      let value = ''
      let from = at
      for (;;) {
        if (at >= end) return
        const c = text.charCodeAt(at)
        if (c === 34 /* " */) break
        if (c === 92 /* \ */) {
          value += text.slice(from, at)
          const e = text[at + 1]
          value += e === 'n' ? '\n' : e
          at += 2
          from = at
        } else at++
      }
      labels[label] = value + text.slice(from, at)
      at++
      if (text.charCodeAt(at) === 44 /* , */) at++
    }
    at++
  }
  const rest = text.slice(at, end).trim()
  const space = rest.indexOf(' ')
  const raw = space === -1 ? rest : rest.slice(0, space)
  const value = parseValue(raw)
  if (value === undefined) return
  let list = out.get(name)
  if (!list) {
    list = []
    out.set(name, list)
  }
  list.push({ labels, value })
}

function parseValue(raw: string): number | undefined {
  if (raw === '') return undefined
  const lower = raw.toLowerCase()
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY
  if (lower === '-inf') return Number.NEGATIVE_INFINITY
  if (lower === 'nan') return Number.NaN
  const value = Number(raw)
  return Number.isNaN(value) ? undefined : value
}

/** Sum of the samples named `name` whose labels include `match`. */
export function total(exposition: Exposition, name: string, match: Record<string, string> = {}): number {
  let sum = 0
  for (const s of exposition.get(name) ?? []) if (matches(s.labels, match)) sum += s.value
  return sum
}

/** Sums of the samples named `name` (matching `match`), grouped by the value of label `by`. */
export function totalsBy(
  exposition: Exposition,
  name: string,
  by: string,
  match: Record<string, string> = {},
): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of exposition.get(name) ?? []) {
    const key = s.labels[by]
    if (key === undefined || !matches(s.labels, match)) continue
    out[key] = (out[key] ?? 0) + s.value
  }
  return out
}

/** Whether a sample named `name` exists at all (a gauge a process does not register). */
export function has(exposition: Exposition, name: string): boolean {
  return (exposition.get(name)?.length ?? 0) > 0
}

/**
 * The cumulative buckets of histogram `name`, summed over every label set matching `match`
 * (`le` aside): bounds ascending, +Inf last.
 */
export function buckets(
  exposition: Exposition,
  name: string,
  match: Record<string, string> = {},
): { readonly le: number[]; readonly counts: number[] } {
  const byLe = new Map<number, number>()
  for (const s of exposition.get(`${name}_bucket`) ?? []) {
    if (!matches(s.labels, match)) continue
    const raw = s.labels['le']
    const le = raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw)
    if (Number.isNaN(le)) continue
    byLe.set(le, (byLe.get(le) ?? 0) + s.value)
  }
  const le = [...byLe.keys()].sort((a, b) => a - b)
  return { le, counts: le.map((b) => byLe.get(b) ?? 0) }
}

function matches(labels: Readonly<Record<string, string>>, match: Record<string, string>): boolean {
  for (const key in match) if (labels[key] !== match[key]) return false
  return true
}
