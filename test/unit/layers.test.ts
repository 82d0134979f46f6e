/**
 * The layers of src/ (docs/ARCHITECTURE.md "Layers"): a folder imports only folders of lower
 * layers, never one of its own layer nor a higher one, so no two folders import each other.
 * A folder is a top-level folder of src/ (each connector one of its own); a file directly in src/
 * is a folder of one. Imports are every `import`, `import type`, `export … from` and `import('…')`
 * (scripts/import-graph.ts, which also prints the folder graph with counts).
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { folderOf, type Import, imports, importsOf, root } from '../../scripts/import-graph.ts'

/** Lowest first. */
const LAYERS: readonly (readonly string[])[] = [
  ['errors', 'format'],
  ['config'],
  ['shared'],
  ['telemetry'],
  ['event'],
  ['intake'],
  ['wal'],
  ['dedup'],
  ['connectors/http', 'connectors/kafka', 'connectors/nats'],
  ['connectors/clickhouse'],
  // The query contract (types, bounds); the backends are to live beside their stores in sinks/.
  ['query'],
  ['sinks'],
  ['delivery'],
  ['pipeline'],
  ['ingest'],
  ['http'],
  ['dashboard'],
  ['pipeline-readiness'],
  ['server', 'consume', 'cluster', 'loadgen'],
  ['cli'],
]

/**
 * Edges forward in the order but wrong all the same: sources and sinks share connectors/, never
 * each other's insides.
 */
const NEVER: readonly string[] = ['consume → sinks', 'sinks → consume']

/**
 * Folder edges that run backward today, each with why and who removes it. The test fails when
 * one of them no longer occurs, so the list only shrinks: delete the entry with the last import.
 */
const KNOWN: Readonly<Record<string, string>> = {}

interface Findings {
  /** `file:line → target (from → to)` of each import that runs backward (or is NEVER) and is not known. */
  readonly backward: string[]
  /** Known edges without an import any more. */
  readonly stale: string[]
  /** Folder cycles among the allowed and unknown edges, `a → b → a`. */
  readonly cycles: string[]
  /** Folders under src/ in no layer. */
  readonly unplaced: string[]
}

function check(
  all: readonly Import[],
  layers: readonly (readonly string[])[],
  known: Readonly<Record<string, string>>,
  never: readonly string[] = NEVER,
): Findings {
  const rank = new Map<string, number>()
  layers.forEach((folders, i) => {
    for (const folder of folders) rank.set(folder, i)
  })
  const backward: string[] = []
  const unplaced = new Set<string>()
  const seenKnown = new Set<string>()
  const edges = new Map<string, Set<string>>()
  for (const item of all) {
    const [from, to] = [folderOf(item.from), folderOf(item.to)]
    if (from === to) continue
    for (const folder of [from, to]) if (!rank.has(folder)) unplaced.add(folder)
    const edge = `${from} → ${to}`
    if (edge in known) {
      seenKnown.add(edge)
      continue
    }
    if (!edges.has(from)) edges.set(from, new Set())
    edges.get(from)!.add(to)
    if (never.includes(edge) || (rank.get(to) ?? -1) >= (rank.get(from) ?? Number.POSITIVE_INFINITY)) {
      backward.push(`${item.from}:${item.line} → ${item.to} (${edge})`)
    }
  }
  const stale = Object.keys(known).filter((edge) => !seenKnown.has(edge))
  return { backward, stale, cycles: cyclesOf(edges), unplaced: [...unplaced].sort() }
}

/** One cycle per strongly connected group of folders (Tarjan), as a path back to its start. */
function cyclesOf(edges: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const groups: string[][] = []
  const visit = (node: string) => {
    index.set(node, index.size)
    low.set(node, index.get(node)!)
    stack.push(node)
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node)!, low.get(next)!))
      } else if (stack.includes(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!))
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = []
      let member: string
      do {
        member = stack.pop()!
        group.push(member)
      } while (member !== node)
      if (group.length > 1) groups.push(group)
    }
  }
  for (const node of edges.keys()) if (!index.has(node)) visit(node)
  return groups.map((group) => {
    const members = new Set(group)
    // A path from the group's first folder back to it, inside the group (breadth first).
    const start = [...members].sort()[0]
    const from = new Map<string, string>()
    const queue = [start]
    while (queue.length > 0) {
      const node = queue.shift()!
      for (const next of edges.get(node) ?? []) {
        if (!members.has(next) || from.has(next)) continue
        from.set(next, node)
        if (next === start) queue.length = 0
        else queue.push(next)
      }
    }
    const path = [start]
    for (let node = from.get(start)!; node !== start; node = from.get(node)!) path.unshift(node)
    return [start, ...path].join(' → ')
  })
}

test('no import runs backward across the layers, and no two folders import each other', () => {
  const findings = check(imports(), LAYERS, KNOWN)
  const problems = [
    ...findings.unplaced.map(
      (folder) => `src/${folder} is in no layer: add it to LAYERS (and docs/ARCHITECTURE.md "Layers")`,
    ),
    ...findings.backward.map((line) => `backward import: ${line}`),
    ...findings.cycles.map((cycle) => `folder cycle: ${cycle}`),
    ...findings.stale.map((edge) => `${edge} no longer occurs: remove it from KNOWN`),
  ]
  assert.deepEqual(problems, [], `\n${problems.join('\n')}\n`)
})

test('every folder of src/ has a layer', () => {
  const folders = readdirSync(join(root, 'src'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() || entry.name.endsWith('.ts'))
    .flatMap((entry) =>
      entry.name === 'connectors'
        ? readdirSync(join(root, 'src/connectors')).map((name) => `connectors/${name}`)
        : [folderOf(`src/${entry.name}`)],
    )
  const placed = new Set(LAYERS.flat())
  assert.deepEqual(
    folders.filter((folder) => !placed.has(folder)),
    [],
  )
})

test('the check names a backward import of any form, a forbidden one, a cycle and a stale allowance', () => {
  const source = [
    "import { a } from '../sinks/sink.ts'",
    "import type { B } from '../http/app.ts'",
    "export { c } from './own.ts'",
    'const d = await import("../cli/main.ts")',
    "import { e } from '../errors.ts'",
  ].join('\n')
  const found = check(
    [
      ...importsOf('src/wal/writer.ts', source),
      { from: 'src/errors.ts', line: 3, to: 'src/format.ts' },
      { from: 'src/format.ts', line: 4, to: 'src/errors.ts' },
      { from: 'src/consume/kafka-source.ts', line: 5, to: 'src/sinks/kafka/client.ts' },
    ],
    LAYERS,
    { 'query → sinks': 'gone' },
  )
  assert.deepEqual(found.backward, [
    'src/wal/writer.ts:1 → src/sinks/sink.ts (wal → sinks)',
    'src/wal/writer.ts:2 → src/http/app.ts (wal → http)',
    'src/wal/writer.ts:4 → src/cli/main.ts (wal → cli)',
    'src/errors.ts:3 → src/format.ts (errors → format)',
    'src/format.ts:4 → src/errors.ts (format → errors)',
    'src/consume/kafka-source.ts:5 → src/sinks/kafka/client.ts (consume → sinks)',
  ])
  assert.deepEqual(found.cycles, ['errors → format → errors'])
  assert.deepEqual(found.stale, ['query → sinks'])
  assert.deepEqual(check([{ from: 'src/nowhere/x.ts', line: 1, to: 'src/errors.ts' }], LAYERS, {}).unplaced, [
    'nowhere',
  ])
})
