/**
 * The CLI's usage texts: `spillway load` without `--url` prints its usage and exits 2 instead of
 * silently loading :8080 for 30 s, and `spillway help` shows every option's bounds from the
 * schema (a value out of them is refused at start; the user should not learn them that way).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { OPTIONS, type OptionSpec } from '../../../src/config/schema.ts'

const MAIN = join(import.meta.dirname, '../../../src/cli/main.ts')

async function spillway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [MAIN, ...args], {
      timeout: 20_000,
    })
    return { code: 0, stdout, stderr }
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('spillway load without --url prints the usage and exits 2 at once', async () => {
  const started = performance.now()
  const { code, stdout, stderr } = await spillway(['load', '--rate', '10', '--duration', '30s'])
  assert.equal(code, 2, stdout + stderr)
  assert.match(stderr, /--url is required/)
  assert.match(stderr, /usage: spillway load --url URL/)
  assert.ok(performance.now() - started < 15_000, 'no load was run')
})

test('spillway load --help still answers without --url', async () => {
  const { code, stdout } = await spillway(['load', '--help'])
  assert.equal(code, 0)
  assert.match(stdout, /usage: spillway load --url URL/)
})

test('spillway help shows each option bound from the schema', async () => {
  const { code, stdout } = await spillway(['help'])
  assert.equal(code, 0)
  const lines = stdout.split('\n')
  const line = (flag: string) => lines.find((l) => l.startsWith(`  --${flag} `)) ?? ''
  assert.match(line('max-pending-bytes'), /\[≥ 65536\]/)
  assert.match(line('http-port'), /\[0–65535\]/)
  for (const o of Object.values(OPTIONS) as OptionSpec[]) {
    if (o.min !== undefined) assert.ok(line(o.flag).includes(String(o.min)), `--${o.flag} shows its minimum`)
    if (o.max !== undefined) assert.ok(line(o.flag).includes(String(o.max)), `--${o.flag} shows its maximum`)
  }
})
