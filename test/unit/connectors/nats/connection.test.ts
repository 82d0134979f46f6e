import assert from 'node:assert/strict'
import { test } from 'node:test'
import { subjectMatches } from '../../../../src/connectors/nats/connection.ts'

test('subject matching: * is one token, > the rest', () => {
  const cases: [string, string, boolean][] = [
    ['events', 'events', true],
    ['events', 'events.web', false],
    ['events.*', 'events.web', true],
    ['events.*', 'events', false],
    ['events.*', 'events.web.x', false],
    ['events.>', 'events.web.x', true],
    ['events.>', 'events', false],
    ['>', 'anything.at.all', true],
    ['*.web', 'events.web', true],
    ['other', 'events', false],
  ]
  for (const [filter, subject, expected] of cases) {
    assert.equal(subjectMatches(filter, subject), expected, `${filter} ~ ${subject}`)
  }
})
