import assert from 'node:assert/strict'
import { utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { ApiKeys, digestOf, newApiKey, parseApiKeyEntries, presentedKey } from '../../../src/http/auth.ts'
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.ts'
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
  const dir = await makeTempDir('spillway-keys-')
  t.after(() => removeTempDir(dir))
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

test('a revoked entry wins over an earlier entry of the same key, inline or in the file', async (t) => {
  const keys = new ApiKeys({ inline: `${entry('alice', 'k-a')},${entry('alice', 'k-a', true)}`, file: '' })
  assert.throws(() => keys.authenticate('k-a'), /"alice" was revoked/)

  const dir = await makeTempDir('spillway-keys-')
  t.after(() => removeTempDir(dir))
  const file = join(dir, 'keys.txt')
  await writeFile(file, `${entry('bob', 'k-b')}\n`)
  const both = new ApiKeys({ inline: entry('bob', 'k-b'), file })
  assert.equal(both.authenticate('k-b'), 'bob')
  // The usual revocation: a line appended to the file while the inline entry stays.
  await writeFile(file, `${entry('bob', 'k-b')}\n${entry('bob', 'k-b', true)}\n`)
  await utimes(file, new Date(), new Date(Date.now() + 5000))
  await sleep(1100)
  assert.throws(() => both.authenticate('k-b'), /"bob" was revoked/)
})

test('an empty, comment-only or half-written keys file keeps the keys read last, and says why', async (t) => {
  const dir = await makeTempDir('spillway-keys-')
  t.after(() => removeTempDir(dir))
  const file = join(dir, 'keys.txt')
  await writeFile(file, `${entry('carol', 'k-c')}\n${entry('dave', 'k-d')}\n`)
  const logged: string[] = []
  const logger = { info: () => {}, warn: (_o: unknown, msg: string) => logged.push(msg) }
  const keys = new ApiKeys({ inline: '', file, logger: logger as never })
  assert.equal(keys.authenticate('k-c'), 'carol')
  let bump = 5000
  const rewrite = async (text: string) => {
    await writeFile(file, text)
    bump += 5000
    await utimes(file, new Date(), new Date(Date.now() + bump))
    await sleep(1100)
  }

  await rewrite('')
  assert.equal(
    keys.authenticate('k-c'),
    'carol',
    'an empty file (a writer that truncated it) revokes nothing',
  )
  await rewrite('# being rewritten\n')
  assert.equal(keys.authenticate('k-d'), 'dave', 'a file with no entries revokes nothing')
  await rewrite(`${entry('carol', 'k-c')}\n${entry('dave', 'k-d').slice(0, 30)}\n`)
  assert.equal(keys.authenticate('k-d'), 'dave', 'a line cut short keeps the previous keys')
  assert.deepEqual(logged, ['ApiKeysReloadFailed', 'ApiKeysReloadFailed', 'ApiKeysReloadFailed'])

  await rewrite(`${entry('carol', 'k-c')}\n${entry('erin', 'k-e', true)}\n`)
  assert.throws(() => keys.authenticate('k-d'), /not recognised/, 'a complete file still removes a key')
  assert.throws(() => keys.authenticate('k-e'), /"erin" was revoked/)
  // Caught mid-write: `erin:<hash>` of `erin:<hash>:revoked`, no newline yet, just written.
  await sleep(1100)
  await writeFile(file, `${entry('carol', 'k-c')}\n${entry('erin', 'k-e')}`)
  assert.throws(() => keys.authenticate('k-e'), /"erin" was revoked/, 'a fresh unterminated line waits')
})
