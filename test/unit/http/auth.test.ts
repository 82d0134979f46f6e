import assert from 'node:assert/strict'
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ApiKeys, digestOf, newApiKey, parseApiKeyEntries, presentedKey } from '../../../src/http/auth.ts'
import { sleep } from '../../helpers/wait.ts'

const entry = (label: string, key: string, revoked = false) =>
  `${label}:${digestOf(key).toString('hex')}${revoked ? ':revoked' : ''}`

test('entries are <label>:<sha256 hex>[:revoked], comma or newline separated, # comments; a bad one is named', () => {
  const text = `${entry('web', 'k1')}, ${entry('old', 'k2', true)}\n# a comment\n\n${entry('ios', 'k3')} # trailing`
  const parsed = parseApiKeyEntries(text, 'apiKeys')
  assert.deepEqual(
    parsed.map((e) => [e.label, e.revoked]),
    [
      ['web', false],
      ['old', true],
      ['ios', false],
    ],
  )
  assert.throws(
    () => parseApiKeyEntries('web:plaintextkey', 'apiKeys'),
    /apiKeys: entry 1 is not <label>:<sha256 hex/,
  )
  assert.throws(() => parseApiKeyEntries(`${entry('a', 'x')}\nbad entry`, 'keys.txt'), /keys\.txt: entry 2/)
})

test('a new key is random, prefixed, and its entry authenticates it', () => {
  const a = newApiKey('mobile')
  const b = newApiKey('mobile')
  assert.notEqual(a.key, b.key)
  assert.match(a.key, /^spw_[A-Za-z0-9_-]{43}$/)
  assert.ok(!a.entry.includes(a.key), 'the entry holds no usable secret')
  const keys = new ApiKeys({ inline: a.entry, file: '' })
  assert.equal(keys.authenticate(a.key), 'mobile')
  assert.throws(() => newApiKey('has space'), /label must be/)
})

test('the key comes from X-API-Key or Authorization: Bearer, nothing else', () => {
  assert.equal(presentedKey({ 'x-api-key': ' abc ' }), 'abc')
  assert.equal(presentedKey({ authorization: 'Bearer abc' }), 'abc')
  assert.equal(presentedKey({ authorization: 'bearer   abc' }), 'abc')
  assert.equal(presentedKey({ authorization: 'Basic YWJjOmRlZg==' }), undefined)
  assert.equal(presentedKey({ authorization: 'Bearer' }), undefined)
  assert.equal(presentedKey({}), undefined)
})

test('missing, wrong and revoked keys are refused with 401 errors that say which', () => {
  const keys = new ApiKeys({ inline: `${entry('web', 'good')},${entry('old', 'gone', true)}`, file: '' })
  assert.equal(keys.enabled, true)
  assert.equal(keys.authenticate('good'), 'web')
  assert.throws(() => keys.authenticate(undefined), { code: 'SPW_ERR_AUTH_MISSING', statusCode: 401 })
  assert.throws(() => keys.authenticate('guess'), {
    code: 'SPW_ERR_AUTH_INVALID',
    message: 'API key not recognised',
  })
  assert.throws(() => keys.authenticate('gone'), { message: 'API key "old" was revoked' })
  assert.equal(new ApiKeys({ inline: '', file: '' }).enabled, false)
})

test('the keys file is re-read when it changes: a key added, then revoked, without a restart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-keys-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'keys.txt')
  await writeFile(file, `${entry('first', 'one')}\n`)
  const keys = new ApiKeys({ inline: '', file })
  assert.equal(keys.authenticate('one'), 'first')
  assert.throws(() => keys.authenticate('two'), /not recognised/)

  await writeFile(file, `${entry('first', 'one', true)}\n${entry('second', 'two')}\n`)
  await utimes(file, new Date(), new Date(Date.now() + 5000))
  await sleep(1100)
  assert.equal(keys.authenticate('two'), 'second')
  assert.throws(() => keys.authenticate('one'), /"first" was revoked/)

  // A broken file keeps the keys read last.
  await writeFile(file, 'not an entry\n')
  await utimes(file, new Date(), new Date(Date.now() + 10_000))
  await sleep(1100)
  assert.equal(keys.authenticate('two'), 'second')

  await assert.rejects(
    async () => new ApiKeys({ inline: '', file: join(dir, 'missing.txt') }),
    /apiKeysFile .*missing\.txt/,
  )
})
