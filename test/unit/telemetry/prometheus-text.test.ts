import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Counter, Histogram, Registry } from 'prom-client'
import { parsePrometheusText, sampleValue, sumOf } from '../../helpers/prometheus-text.ts'

test('the parser reads families, labels with escapes, special values and timestamps', () => {
  const text = [
    '# HELP http_total Requests, with a \\\\ and a \\n in its help.',
    '# TYPE http_total counter',
    'http_total{route="/a",method="GET"} 3',
    'http_total{route="quote \\" back \\\\ nl \\n",method="POST",} 1.5e3 1700000000000',
    '# a comment line',
    '# TYPE temp gauge',
    'temp -Inf',
    '',
    '# TYPE lat histogram',
    'lat_bucket{le="1"} 1',
    'lat_bucket{le="+Inf"} 2',
    'lat_sum 3.5',
    'lat_count 2',
    'bare_untyped NaN',
    '# TYPE cased gauge',
    'cased{k="a"} Nan',
    'cased{k="b"} +inf',
    '',
  ].join('\n')
  const families = parsePrometheusText(text)
  assert.equal(families.get('http_total')?.type, 'counter')
  assert.equal(families.get('http_total')?.help, 'Requests, with a \\ and a \n in its help.')
  assert.equal(sampleValue(families, 'http_total', { route: '/a', method: 'GET' }), 3)
  const odd = families.get('http_total')!.samples[1]
  assert.deepEqual(odd.labels, { route: 'quote " back \\ nl \n', method: 'POST' })
  assert.equal(odd.value, 1500)
  assert.equal(odd.timestamp, 1_700_000_000_000)
  assert.equal(sampleValue(families, 'temp'), Number.NEGATIVE_INFINITY)
  assert.equal(sampleValue(families, 'lat_count'), 2)
  assert.equal(sampleValue(families, 'lat_bucket', { le: '+Inf' }), 2)
  assert.ok(Number.isNaN(sampleValue(families, 'bare_untyped')))
  assert.equal(families.get('bare_untyped')?.type, 'untyped')
  assert.ok(Number.isNaN(sampleValue(families, 'cased', { k: 'a' })), 'prom-client writes NaN as Nan')
  assert.equal(sampleValue(families, 'cased', { k: 'b' }), Number.POSITIVE_INFINITY)
  assert.equal(sumOf(families, 'http_total'), 1503)
})

test('the parser rejects what Prometheus would reject', () => {
  const bad: Record<string, string> = {
    'no final newline': '# TYPE a counter\na 1',
    'bad metric name': '1a 1\n',
    'bad label name': 'a{1x="v"} 1\n',
    'reserved label name': 'a{__name__="v"} 1\n',
    'unquoted label value': 'a{x=v} 1\n',
    'unterminated label value': 'a{x="v} 1\n',
    'bad escape': 'a{x="\\t"} 1\n',
    'duplicate label': 'a{x="1",x="2"} 1\n',
    'missing value': 'a{x="1"}\n',
    'bad value': 'a 1,5\n',
    'not a number': 'a nope\n',
    'trailing junk': 'a 1 2 3\n',
    'unknown type': '# TYPE a countr\na 1\n',
    'type after samples': 'a 1\n# TYPE a counter\n',
    'second type': '# TYPE a counter\n# TYPE a counter\na 1\n',
    'negative counter': '# TYPE a counter\na -1\n',
    'family split in two': '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="y"} 2\n',
    'series twice': '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n',
    'bucket without le': '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n',
    'buckets going down':
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    'no +Inf bucket': '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    '+Inf bucket not the count': '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
  }
  for (const [what, text] of Object.entries(bad)) {
    assert.throws(() => parsePrometheusText(text), Error, what)
  }
})

test("prom-client's own output parses, histograms included", async () => {
  const registry = new Registry()
  const c = new Counter({ name: 'c_total', help: 'h "x" \\ y', labelNames: ['k'], registers: [registry] })
  c.inc({ k: 'a"b\\c\nd' }, 2)
  const h = new Histogram({ name: 'h_ms', help: 'h', buckets: [1, 10], registers: [registry] })
  for (const v of [0.5, 5, 50]) h.observe(v)
  const families = parsePrometheusText(await registry.metrics())
  assert.equal(sampleValue(families, 'c_total', { k: 'a"b\\c\nd' }), 2)
  assert.equal(sampleValue(families, 'h_ms_bucket', { le: '10' }), 2)
  assert.equal(sampleValue(families, 'h_ms_count'), 3)
})
