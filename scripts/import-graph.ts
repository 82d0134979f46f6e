// The folder → folder import graph of src/, with counts: `node scripts/import-graph.ts`.
// test/unit/layers.test.ts checks the same edges against the declared layer order, so this file
// is also the one parser both use (TypeScript's own scanner: `import type`, re-exports and
// dynamic `import('…')` included; comments and strings never count).
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, posix, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src')

export interface Import {
  /** Importing file, relative to the repository (`src/http/ingest.ts`). */
  from: string
  line: number
  /** Imported file, relative to the repository. */
  to: string
}

function sourceFiles(dir: string): string[] {
  const files: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) files.push(...sourceFiles(path))
    else if (entry.name.endsWith('.ts')) files.push(path)
  }
  return files.sort()
}

/** Every relative import between files under src/ (packages are not layers). */
export function imports(): Import[] {
  return sourceFiles(src).flatMap((file) =>
    importsOf(relative(root, file).split(sep).join('/'), readFileSync(file, 'utf8')),
  )
}

/** The relative imports of one file (`from` relative to the repository), with their lines. */
export function importsOf(from: string, text: string): Import[] {
  const lines = ts.createSourceFile(from, text, ts.ScriptTarget.Latest, false)
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.filter((ref) => ref.fileName.startsWith('.'))
    .map((ref) => ({
      from,
      line: lines.getLineAndCharacterOfPosition(ref.pos).line + 1,
      to: posix.join(posix.dirname(from), ref.fileName),
    }))
}

/**
 * The folder a file belongs to: its top-level folder under src/ (`http`), a connector's own
 * folder (`connectors/kafka`), or, for a file directly in src/, its name (`pipeline`).
 */
export function folderOf(path: string): string {
  const parts = path.replace(/^src\//, '').split('/')
  if (parts.length === 1) return parts[0].replace(/\.ts$/, '')
  if (parts[0] === 'connectors' && parts.length > 2) return `connectors/${parts[1]}`
  return parts[0]
}

/** `from → to` folder edges with how many imports make each; imports inside a folder are left out. */
export function folderGraph(all: Import[] = imports()): Map<string, number> {
  const edges = new Map<string, number>()
  for (const { from, to } of all) {
    const edge = `${folderOf(from)} → ${folderOf(to)}`
    if (folderOf(from) !== folderOf(to)) edges.set(edge, (edges.get(edge) ?? 0) + 1)
  }
  return new Map([...edges].sort(([a], [b]) => a.localeCompare(b)))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [edge, count] of folderGraph()) console.log(`${edge.padEnd(40)} ${count}`)
}
