/**
 * Parses a Prometheus text exposition with the parser Prometheus itself uses — Go's
 * github.com/prometheus/common/expfmt TextParser — through test/tools/promparse, so a test can
 * prove that a real Prometheus would scrape what the server writes, not only our own strict
 * parser (prometheus-text.ts, whose Family/Sample shapes this returns).
 *
 * The Go binary is built once per machine, into `~/.cache/spillway/promparse-<hash>` (or under
 * $XDG_CACHE_HOME), the hash being that of the tool's main.go, go.mod and go.sum: a change to
 * them builds a new one. It builds to a temporary name and renames, so test processes building
 * at the same moment never see a half-written binary. Building needs `go` (or $GO) and, the
 * first time, the Go module proxy.
 *
 * What expfmt does not check, and prometheus-text.ts does: a series exposed twice, a family
 * split in two, a sample before its TYPE. expfmt also drops families that have no sample.
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Family, Sample } from './prometheus-text.ts'

export type { Family, MetricType, Sample } from './prometheus-text.ts'

const TOOL = new URL('../tools/promparse/', import.meta.url).pathname
const SOURCES = ['main.go', 'go.mod', 'go.sum']
const run = promisify(execFile)

let binary: Promise<string> | undefined

/** The families expfmt reads in `text`, sorted by name; throws with expfmt's message if it refuses the text. */
export async function parseWithExpfmt(text: string): Promise<Family[]> {
  const path = await promparseBinary()
  const child = spawn(path, [], { stdio: ['pipe', 'pipe', 'pipe'] })
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
  // The tool may exit before reading all of its input (a parse error): that EPIPE is not ours to report.
  child.stdin.on('error', () => {})
  child.stdin.end(text)
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  const message = Buffer.concat(stderr).toString('utf8').trim()
  if (code !== 0) throw new Error(`expfmt refused the exposition: ${message || `exit ${code ?? signal}`}`)
  const parsed = JSON.parse(Buffer.concat(stdout).toString('utf8')) as RawFamily[]
  return parsed.map((f) => ({
    name: f.name,
    type: f.type,
    help: f.help ?? undefined,
    samples: f.samples.map(
      (s): Sample => ({
        name: s.name,
        labels: s.labels,
        value: typeof s.value === 'number' ? s.value : SPECIAL[s.value],
        ...(s.timestamp !== undefined && { timestamp: s.timestamp }),
      }),
    ),
  }))
}

/**
 * Families by name, the shape prometheus-text.ts's `sampleValue` and `sumOf` take, so expfmt's
 * result is read with the same helpers: `sampleValue(familyMap(await parseWithExpfmt(text)), …)`.
 */
export function familyMap(families: readonly Family[]): Map<string, Family> {
  return new Map(families.map((f) => [f.name, f]))
}

interface RawFamily {
  readonly name: string
  readonly type: Family['type']
  readonly help: string | null
  readonly samples: {
    readonly name: string
    readonly labels: Record<string, string>
    readonly value: number | keyof typeof SPECIAL
    readonly timestamp?: number
  }[]
}

const SPECIAL = { NaN: Number.NaN, '+Inf': Number.POSITIVE_INFINITY, '-Inf': Number.NEGATIVE_INFINITY }

/** The path of the promparse binary for the tool's current sources, built if this machine has none yet. */
export function promparseBinary(): Promise<string> {
  binary ??= build().catch((error) => {
    binary = undefined
    throw error
  })
  return binary
}

async function build(): Promise<string> {
  const hash = createHash('sha256')
  for (const file of SOURCES) hash.update(`${file}\0`).update(await readFile(join(TOOL, file)))
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'spillway')
  const path = join(dir, `promparse-${hash.digest('hex').slice(0, 16)}`)
  if (await isFile(path)) return path
  await mkdir(dir, { recursive: true })
  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  try {
    await run(process.env.GO || 'go', ['build', '-trimpath', '-o', temp, '.'], {
      cwd: TOOL,
      // readonly: go.mod and go.sum are pinned and tidy, so a build never rewrites them.
      env: { ...process.env, GOFLAGS: '-mod=readonly -buildvcs=false' },
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    })
    await rename(temp, path)
  } catch (error) {
    await rm(temp, { force: true })
    const { stderr } = error as { stderr?: string }
    throw new Error(
      `could not build test/tools/promparse (needs Go 1.26 and the Go module proxy): ${stderr?.trim() || error}`,
    )
  }
  return path
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile()
  } catch {
    return false
  }
}
