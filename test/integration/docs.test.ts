/**
 * Issue 17: `/docs` is Spillway's (its name and logo, served by the process), and the OpenAPI
 * document it shows lists the Event schema — the field table's input fields — with an example of
 * every request and response.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { INPUT_FIELDS } from '../../src/event/fields.ts'
import { SPILLWAY_LOGO } from '../../src/http/docs-ui.ts'
import { validateEvent } from '../../src/intake/validate.ts'
import { destroyAgent, send } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'

let url = ''
const cleanups: (() => Promise<void>)[] = []

before(async () => {
  const server = await startTestServer({ after: (fn: () => Promise<void>) => cleanups.push(fn) })
  url = server.url
})
after(async () => {
  destroyAgent()
  for (const fn of cleanups.reverse()) await fn()
})

type Json = Record<string, unknown>
const examplesOf = (media: Json): unknown[] => [
  ...(media.example !== undefined ? [media.example] : []),
  ...Object.values((media.examples ?? {}) as Record<string, { value: unknown }>).map((e) => e.value),
]

describe('/docs', () => {
  test('/docs/json lists the Event schema with every input field of the table', async () => {
    const answer = await send(`${url}/docs/json`)
    assert.equal(answer.status, 200)
    const event = answer.body.components.schemas.Event
    assert.ok(event, 'no Event schema')
    assert.deepEqual(Object.keys(event.properties), INPUT_FIELDS)
    assert.deepEqual(event.required, ['event_name', 'channel', 'user_id', 'timestamp'])
    assert.equal(event.additionalProperties, false)
    assert.ok(
      event.properties.timestamp.oneOf.some((s: Json) => s.format === 'date-time'),
      'timestamp takes ISO-8601',
    )
    assert.equal(
      answer.body.paths['/events'].post.requestBody.content['application/json'].schema.$ref,
      '#/components/schemas/Event',
    )
  })

  test('every operation has an example of its request and of each response', async () => {
    const { body } = await send(`${url}/docs/json`)
    let operations = 0
    for (const [path, item] of Object.entries(body.paths as Record<string, Record<string, Json>>)) {
      for (const [method, operation] of Object.entries(item)) {
        operations++
        const where = `${method.toUpperCase()} ${path}`
        const request = operation.requestBody as { content: Record<string, Json> } | undefined
        for (const [type, media] of Object.entries(request?.content ?? {})) {
          assert.ok(examplesOf(media).length > 0, `${where}: no request example for ${type}`)
        }
        for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
          const content = response.content as Record<string, Json> | undefined
          assert.ok(content, `${where} ${status}: no content`)
          for (const [type, media] of Object.entries(content)) {
            assert.ok(examplesOf(media).length > 0, `${where} ${status}: no example for ${type}`)
          }
        }
      }
    }
    assert.ok(operations >= 5)
  })

  test('the request examples of the ingest routes are events the server accepts', async () => {
    const { body } = await send(`${url}/docs/json`)
    const limits = {
      maxEventBytes: 65536,
      maxStringLength: 1024,
      maxTags: 100,
      maxDepth: 8,
      clockSkewSeconds: 300,
    }
    const events = [
      ...examplesOf(body.paths['/events'].post.requestBody.content['application/json']),
      ...(examplesOf(
        body.paths['/events/batch'].post.requestBody.content['application/json'],
      )[0] as unknown[]),
    ]
    for (const event of events) {
      const verdict = validateEvent(structuredClone(event), { receivedAt: Date.UTC(2024, 7, 12, 16) }, limits)
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.error)
    }
  })

  test('the page is Spillway’s: its title, and its own logo served by the process', async () => {
    const page = await send(`${url}/docs/`)
    assert.equal(page.status, 200)
    assert.match(String(page.body), /<title>Spillway API<\/title>/)
    const initializer = await send(`${url}/docs/static/swagger-initializer.js`)
    assert.equal(initializer.status, 200)
    const logo = /img\.src = 'data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)'/.exec(String(initializer.body))
    assert.ok(logo, 'the initializer does not set an SVG logo')
    const svg = Buffer.from(logo[1], 'base64').toString()
    assert.equal(svg, SPILLWAY_LOGO.toString())
    assert.match(svg, /Spillway/)
  })
})
