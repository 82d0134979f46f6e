/**
 * The intake validator on its own: validates the same pre-parsed events N times (default 1M) and
 * prints events per CPU-second. `node bench/validate.ts [count] [other-validate.ts]` also times another copy of
 * the validator (e.g. the previous version, checked out elsewhere) in the same run, alternating
 * rounds so both see the same machine noise.
 */
import { validateEvent } from '../src/intake/validate.ts'

type Validate = typeof validateEvent
const count = Number(process.argv[2] ?? 1_000_000)
const other = process.argv[3]
const ROUNDS = 11
const NOW_MS = Date.now()
const now = Math.floor(NOW_MS / 1000)
const limits = {
  maxEventBytes: 64 * 1024,
  maxStringLength: 1024,
  maxTags: 100,
  maxDepth: 8,
  clockSkewSeconds: 300,
}
const ctx = { receivedAt: NOW_MS }

// 1024 realistic events, parsed from JSON as the HTTP path has them; a few without event_id (content hash).
const events: unknown[] = []
for (let i = 0; i < 1024; i++) {
  events.push(
    JSON.parse(
      JSON.stringify({
        ...(i % 16 === 0 ? {} : { event_id: `0b6c9f0e-5a43-4d1e-9a9d-${String(i).padStart(12, '0')}` }),
        event_name: ['product_view', 'signup', 'purchase'][i % 3],
        channel: ['web', 'mobile', 'api', 'email', 'push'][i % 5],
        campaign_id: i % 4 === 0 ? null : `cmp_${i % 50}`,
        user_id: `user_${i * 7}`,
        timestamp: now - (i % 600),
        tags: i % 3 === 0 ? [] : ['electronics', 'homepage'],
        metadata: i % 5 === 0 ? null : { product_id: `prod-${i}`, price: 129.99, nested: { a: [1, 2, 3] } },
      }),
    ),
  )
}

function run(validate: Validate): number {
  // CPU time, not wall time: on a shared machine the wall clock mostly measures the neighbours.
  const start = process.cpuUsage()
  let ok = 0
  for (let i = 0; i < count; i++) if (validate(events[i & 1023], ctx, limits).ok) ok++
  const used = process.cpuUsage(start)
  if (ok !== count) throw new Error(`only ${ok} of ${count} events were valid`)
  return count / ((used.user + used.system) / 1e6)
}

const candidates: [string, Validate][] = [['current', validateEvent]]
if (other) candidates.push([other, ((await import(other)) as { validateEvent: Validate }).validateEvent])
for (const [, validate] of candidates) run(validate) // warm-up
const results = new Map<string, number[]>(candidates.map(([name]) => [name, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, validate] of candidates) results.get(name)?.push(run(validate))
}
for (const [name, rates] of results) {
  rates.sort((a, b) => a - b)
  console.log(
    `${name}: median ${Math.round(rates[ROUNDS >> 1]).toLocaleString('en')} events/s over ${ROUNDS} rounds of ${count.toLocaleString('en')} (min ${Math.round(rates[0]).toLocaleString('en')}, max ${Math.round(rates[ROUNDS - 1]).toLocaleString('en')})`,
  )
}
