import assert from 'node:assert/strict'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { CursorFile } from '../../../src/delivery/cursor-file.ts'
import { isSpillwayError } from '../../../src/errors.ts'
import { tempDir } from './helpers.ts'

test('a sink without a saved cursor loads null', async (t) => {
  const dir = await tempDir(t)
  assert.equal(await new CursorFile(join(dir, 'cursors'), 'duckdb').load(), null)
})

test('save replaces the cursor atomically and leaves no temporary file', async (t) => {
  const dir = join(await tempDir(t), 'cursors')
  const file = new CursorFile(dir, 'duckdb')
  await file.save(4096)
  await file.save(8192)
  assert.equal(await new CursorFile(dir, 'duckdb').load(), 8192)
  assert.deepEqual(await readdir(dir), ['duckdb.json'])
  const doc = JSON.parse(await readFile(file.path, 'utf8'))
  assert.equal(doc.sink, 'duckdb')
  assert.equal(doc.position, 8192)
})

test('a stale temporary file from a crash mid-save does not matter', async (t) => {
  const dir = join(await tempDir(t), 'cursors')
  const file = new CursorFile(dir, 'memory')
  await file.save(100)
  await writeFile(`${file.path}.tmp`, '{"sink":"mem')
  assert.equal(await file.load(), 100)
  await file.save(200)
  assert.equal(await file.load(), 200)
})

test('a damaged cursor file is an error, not a silent restart from zero', async (t) => {
  const dir = join(await tempDir(t), 'cursors')
  await mkdir(dir)
  const file = new CursorFile(dir, 'duckdb')
  await writeFile(file.path, 'garbage')
  await assert.rejects(file.load(), (error) => isSpillwayError(error, 'SPW_ERR_WAL_CORRUPT'))
  await writeFile(file.path, '{"position":-5}')
  await assert.rejects(file.load(), (error) => isSpillwayError(error, 'SPW_ERR_WAL_CORRUPT'))
})

test('a sink name cannot escape the cursors directory', async (t) => {
  const dir = join(await tempDir(t), 'cursors')
  const file = new CursorFile(dir, '../evil')
  assert.ok(file.path.startsWith(`${dir}/`))
  assert.ok(!file.path.slice(dir.length + 1).includes('/'))
  await file.save(1)
  assert.equal(await file.load(), 1)
})
