/**
 * Log formats: JSON with numeric levels for a shipper, pino-pretty's coloured lines for a person
 * at a terminal (`auto` chooses by whether stdout is one), and no line lost when a process exits.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { createLogger, resolveLogFormat } from '../../../src/telemetry/logger.ts'

function sink() {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    },
  })
  return { stream, lines }
}

test('auto is pretty on a terminal and JSON otherwise', () => {
  assert.equal(resolveLogFormat('auto', true), 'pretty')
  assert.equal(resolveLogFormat('auto', false), 'json')
  assert.equal(resolveLogFormat('json', true), 'json')
  assert.equal(resolveLogFormat('pretty', false), 'pretty')
})

test('pretty lines name the level in words and carry the fields; JSON keeps numeric levels', async () => {
  const p = sink()
  const logger = createLogger('info', { format: 'pretty', destination: p.stream, tty: false })
  logger.info({ sink: 'duckdb', rows: 3 }, 'DeliveryStarted')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(p.lines.length, 1, p.lines.join('\n'))
  assert.match(p.lines[0], /INFO.*DeliveryStarted/)
  assert.match(p.lines[0], /"sink":"duckdb"/)
  assert.doesNotMatch(p.lines[0], /^\{/)
  const j = sink()
  createLogger('info', { format: 'json', destination: j.stream }).warn('x')
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(JSON.parse(j.lines[0]).level, 40)
})

test('no line is lost when the process exits right after logging, in either format', () => {
  const logger = join(import.meta.dirname, '../../../src/telemetry/logger.ts')
  for (const format of ['json', 'pretty']) {
    const script = `import { createLogger } from ${JSON.stringify(logger)}
const l = createLogger('info', { format: '${format}' })
for (let i = 0; i < 2000; i++) l.info({ i }, 'line')
l.flush()
process.exit(0)`
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    })
    assert.equal(out.status, 0, out.stderr)
    const count = out.stdout.split('\n').filter((l) => l.includes('line')).length
    assert.equal(count, 2000, `${format}: every line written`)
  }
})
