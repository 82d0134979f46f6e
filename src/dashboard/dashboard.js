// The dashboard page of the operations port: polls the feed (GET api/stats, README "Operations
// port") once a second and draws it with uPlot (shipped from the package). Everything from the
// server — event names above all, which are user data — goes into the page as text
// (textContent), never as HTML.
;(() => {
  const KEY_STORAGE = 'spillway.apiKey'
  const HISTORY = 900
  const STATUSES = ['202', '400', '401', '413', '429', '503']
  const STATUS_COLORS = {
    202: '#3fbf7f',
    400: '#f0b429',
    401: '#c678dd',
    413: '#ff8c42',
    429: '#4fb3ff',
    503: '#ef5350',
    other: '#8a98a8',
  }
  const CHANNEL_COLORS = ['#4fb3ff', '#3fbf7f', '#f0b429', '#c678dd', '#ef5350', '#56d4dd', '#ff8c42']

  const $ = (id) => document.getElementById(id)
  const state = { history: [], lastT: 0, stats: null, selected: null, charts: {} }

  // --- formatting ----------------------------------------------------------------------------
  const nf = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })
  const num = (n) => (n === null || n === undefined || Number.isNaN(n) ? '–' : nf.format(n))
  const int = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'))
  function bytes(n) {
    if (n === null || n === undefined) return '–'
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
    let i = 0
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024
      i++
    }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '–'
    if (seconds < 60) return `${Math.round(seconds)} s`
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
    return `${Math.floor(seconds / 86400)} d ${Math.floor((seconds % 86400) / 3600)} h`
  }
  const ms = (v) => (v === null || v === undefined ? '–' : `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`)
  function ago(iso) {
    if (!iso) return '–'
    return `${duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000))} ago`
  }
  function text(id, value) {
    const el = $(id)
    if (el.textContent !== value) el.textContent = value
  }
  function el(tag, content, className) {
    const node = document.createElement(tag)
    if (content !== undefined && content !== null) node.textContent = String(content)
    if (className) node.className = className
    return node
  }
  function row(cells) {
    const tr = document.createElement('tr')
    for (const cell of cells) tr.append(cell instanceof Node ? cell : el('td', cell))
    return tr
  }
  const numCell = (v) => el('td', v, 'num')

  // --- the feed -------------------------------------------------------------------------------
  function headers() {
    const key = sessionStorage.getItem(KEY_STORAGE)
    return key ? { authorization: `Bearer ${key}` } : {}
  }

  async function get(path) {
    const response = await fetch(path, { headers: headers(), cache: 'no-store' })
    if (response.status === 401) {
      const body = await response.json().catch(() => ({}))
      askForKey(body.error)
      throw new Error('API key needed')
    }
    const body = await response.json()
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`)
    return body
  }

  function askForKey(message) {
    const had = sessionStorage.getItem(KEY_STORAGE)
    text(
      'key-message',
      had
        ? `The key was refused: ${message}`
        : "This node's operations port needs an API key (the same keys as the API).",
    )
    $('key-form').hidden = false
    $('main').hidden = true
  }

  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault()
    sessionStorage.setItem(KEY_STORAGE, $('key-input').value.trim())
    $('key-input').value = ''
    $('key-form').hidden = true
    $('main').hidden = false
    state.lastT = 0
    state.history = []
    poll()
    explore()
  })

  let polling = false
  async function poll() {
    if (polling) return
    polling = true
    try {
      const stats = await get(state.lastT ? `api/stats?since=${state.lastT}` : 'api/stats')
      if (state.lastT === 0) state.history = []
      for (const sample of stats.history) state.history.push(sample)
      if (state.history.length > HISTORY) state.history.splice(0, state.history.length - HISTORY)
      if (stats.history.length > 0) state.lastT = stats.history[stats.history.length - 1].t
      state.stats = stats
      render(stats)
      $('live').className = 'pill ok'
      text('live', 'live')
    } catch (error) {
      $('live').className = 'pill bad'
      text('live', error.message === 'API key needed' ? 'locked' : 'disconnected')
    } finally {
      polling = false
    }
  }

  async function ready() {
    try {
      const response = await fetch('ready', { cache: 'no-store' })
      const body = await response.json()
      $('ready').className = `pill ${response.ok ? 'ok' : 'bad'}`
      text('ready', response.ok ? 'ready' : 'not ready')
      $('ready').title = body.error || ''
    } catch {
      $('ready').className = 'pill'
      text('ready', 'ready?')
    }
  }

  // --- rendering ------------------------------------------------------------------------------
  function render(stats) {
    const node = stats.node
    text('node-host', node.hostname)
    text('node-version', node.version)
    text('node-uptime', duration(node.uptimeSeconds))
    text(
      'node-workers',
      node.workers
        ? `${node.workers.running}/${node.workers.configured} (restarts ${node.workers.restarts})`
        : '1 process',
    )
    const now = stats.current
    const totalRequests = now ? Object.values(now.requests).reduce((a, b) => a + b, 0) : null
    text('c-requests', num(totalRequests))
    text(
      'c-requests-sub',
      now
        ? Object.entries(now.requests)
            .filter(([, v]) => v > 0)
            .map(([s, v]) => `${s}: ${num(v)}`)
            .join(' · ') || 'idle'
        : '',
    )
    text('c-accepted', num(now?.events.accepted))
    text('c-duplicate', num(now?.events.duplicate))
    text('c-rejected', num(now?.events.rejected))
    text('c-accepted-total', int(stats.totals.events.accepted))
    text('c-duplicate-total', int(stats.totals.events.duplicate))
    text('c-rejected-total', int(stats.totals.events.rejected))
    text('c-p99', now?.latencyMs ? ms(now.latencyMs.p99) : '–')
    text(
      'c-latency-sub',
      now?.latencyMs
        ? `p50 ${ms(now.latencyMs.p50)} · p95 ${ms(now.latencyMs.p95)}`
        : 'no 202 in the last second',
    )
    text('c-backlog', bytes(stats.wal.backlogBytes))
    text(
      'c-oldest',
      `${stats.wal.oldestIsLowerBound ? '≥ ' : ''}${duration(stats.wal.oldestUndeliveredSeconds)}`,
    )
    text('c-rss', bytes(stats.process.rssBytes))
    text('c-loop', ms(stats.process.eventLoopDelayMs))
    renderSinks(stats)
    renderAdmission(stats)
    renderDeadLetters(stats)
    renderDedup(stats)
    renderWorkers(stats)
    renderCharts()
  }

  function renderSinks(stats) {
    const body = $('sinks').tBodies[0]
    const rows = stats.sinks.map((s) => {
      const breaker = el('td')
      const pill = el('span', s.breaker, `state state-${s.breaker}`)
      pill.dataset.sink = s.name
      pill.dataset.breaker = s.breaker
      breaker.append(pill)
      const error = el(
        'td',
        s.lastError ? `${s.lastError} (${ago(s.lastErrorAt)})` : '–',
        s.lastError ? 'err' : '',
      )
      const tr = row([
        el('td', s.name),
        breaker,
        numCell(num(s.rowsPerSecond)),
        numCell(int(s.deliveredTotal)),
        numCell(bytes(s.backlogBytes)),
        numCell(duration(s.lagSeconds)),
        numCell(int(s.retriesTotal)),
        el('td', ago(s.lastDeliveredAt)),
        error,
      ])
      tr.dataset.sink = s.name
      return tr
    })
    body.replaceChildren(...rows)
  }

  function renderAdmission(stats) {
    const out = stats.admission.map((a) => {
      const pct = Math.round(a.fullness * 100)
      const box = el('div', null, 'bar')
      const label = el('div', null, 'label')
      const limit =
        a.bound === 'queue'
          ? `${int(a.current)} / ${int(a.limit)} events`
          : a.bound === 'delay'
            ? `${int(a.current)} % shed (target ${a.limit} ms)`
            : `${bytes(a.current)} / ${bytes(a.limit)}`
      label.append(el('span', a.bound), el('span', `${limit} · refused ${int(a.refusedTotal)}`))
      const track = el('div', null, 'track')
      const fill = el('div', null, `fill${pct >= 90 ? ' bad' : pct >= 60 ? ' warn' : ''}`)
      fill.style.width = `${Math.min(100, pct)}%`
      track.append(fill)
      box.append(label, track)
      return box
    })
    $('admission').replaceChildren(...out)
  }

  function facts(target, pairs) {
    const nodes = []
    for (const [k, v] of pairs) nodes.push(el('dt', k), el('dd', v))
    target.replaceChildren(...nodes)
  }

  function renderDeadLetters(stats) {
    const d = stats.deadLetters
    const by = stats.totals.deadLetteredBySource
    facts($('deadletters'), [
      ['stored entries', `${int(d.entries)} / ${int(d.limitEntries)}`],
      ['stored bytes', `${bytes(d.bytes)} / ${bytes(d.limitBytes)}`],
      ['invalid batch events (intake)', int(by.intake ?? 0)],
      ['refused by a sink (delivery)', int(by.delivery ?? 0)],
      ['per second now', num(stats.current?.deadLettersPerSecond ?? 0)],
    ])
    const reasons = Object.entries(stats.totals.rejectedByReason)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([reason, count]) => row([el('td', reason), numCell(int(count))]))
    $('reasons').tBodies[0].replaceChildren(...(reasons.length ? reasons : [row([el('td', 'none', 'hint')])]))
  }

  function renderDedup(stats) {
    const layers = stats.totals.duplicatesByLayer
    const rows = [
      row([el('td', 'L1 (HTTP cache)'), numCell(int(layers.l1 ?? 0))]),
      row([el('td', 'delivery-time check'), numCell(int(layers.delivery ?? 0))]),
      row([el('td', 'L2 (Redis)'), numCell(int(layers.l2 ?? 0))]),
      row([el('td', 'L1 keys held'), numCell(int(stats.dedup.l1Keys))]),
      row([el('td', 'Redis'), numCell(stats.dedup.l2 ?? 'not configured')]),
    ]
    $('dedup').tBodies[0].replaceChildren(...rows)
  }

  function renderWorkers(stats) {
    const node = stats.node
    const rows = []
    if (!node.workers) rows.push(row([el('td', 'one process (no --workers)'), numCell(`pid ${node.pid}`)]))
    else {
      rows.push(
        row([
          el('td', 'running / configured'),
          numCell(`${node.workers.running} / ${node.workers.configured}`),
        ]),
      )
      rows.push(row([el('td', 'restarts'), numCell(int(node.workers.restarts))]))
      for (const s of node.shards)
        rows.push(
          row([
            el('td', `shard ${s.shard}`),
            numCell(`${bytes(s.headBytes)} written · ${bytes(s.backlogBytes)} to merge`),
          ]),
        )
    }
    rows.push(
      row([
        el('td', 'delivery thread'),
        numCell(stats.process.deliveryThreadUp === false ? 'restarting' : 'up'),
      ]),
    )
    $('workers').tBodies[0].replaceChildren(...rows)
  }

  // --- charts ---------------------------------------------------------------------------------
  const axisStyle = { stroke: '#8a98a8', grid: { stroke: '#26313d', width: 1 }, ticks: { stroke: '#26313d' } }

  function chart(id, series, options = {}) {
    const target = $(id)
    const width = Math.max(280, target.clientWidth || 400)
    const plot = new uPlot(
      {
        width,
        height: 200,
        series: [{}, ...series.map((s) => ({ width: 2, points: { show: false }, ...s }))],
        axes: [axisStyle, { ...axisStyle, size: 72, values: options.values }],
        scales: {
          x: { time: options.time !== false },
          y: { range: (_u, _min, max) => [0, Math.max(max, options.minMax ?? 1)] },
        },
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      },
      [[]],
      target,
    )
    new ResizeObserver(() => {
      const w = Math.max(280, target.clientWidth)
      if (w !== plot.width) plot.setSize({ width: w, height: 200 })
    }).observe(target)
    return plot
  }

  function seriesOf(pick) {
    return state.history.map((s) => {
      const v = pick(s)
      return v === undefined ? null : v
    })
  }

  function renderCharts() {
    const h = state.history
    const xs = h.map((s) => s.t / 1000)
    const c = state.charts
    if (!c.requests) {
      c.requests = chart(
        'chart-requests',
        [...STATUSES, 'other'].map((s) => ({ label: s, stroke: STATUS_COLORS[s] })),
      )
      c.events = chart('chart-events', [
        { label: 'accepted', stroke: '#3fbf7f' },
        { label: 'duplicate', stroke: '#4fb3ff' },
        { label: 'rejected', stroke: '#ef5350' },
      ])
      c.latency = chart('chart-latency', [
        { label: 'p50', stroke: '#3fbf7f' },
        { label: 'p95', stroke: '#f0b429' },
        { label: 'p99', stroke: '#ef5350' },
      ])
      c.backlog = chart(
        'chart-backlog',
        [{ label: 'backlog', stroke: '#4fb3ff', fill: 'rgba(79,179,255,.15)' }],
        {
          values: (_u, ticks) => ticks.map(bytes),
          minMax: 1024,
        },
      )
    }
    const other = (s) =>
      Object.entries(s.requests)
        .filter(([k]) => !STATUSES.includes(k))
        .reduce((a, [, v]) => a + v, 0)
    c.requests.setData([xs, ...STATUSES.map((st) => seriesOf((s) => s.requests[st] ?? 0)), seriesOf(other)])
    c.events.setData([
      xs,
      seriesOf((s) => s.events.accepted),
      seriesOf((s) => s.events.duplicate),
      seriesOf((s) => s.events.rejected),
    ])
    c.latency.setData([
      xs,
      seriesOf((s) => s.latencyMs?.p50 ?? null),
      seriesOf((s) => s.latencyMs?.p95 ?? null),
      seriesOf((s) => s.latencyMs?.p99 ?? null),
    ])
    c.backlog.setData([xs, seriesOf((s) => s.walBacklogBytes)])
  }

  // --- events explorer ------------------------------------------------------------------------
  function window_() {
    const span = Number($('window').value)
    const to = Math.floor(Date.now() / 1000)
    const bucket = span <= 3600 ? 'minute' : span <= 7 * 86400 ? 'hour' : 'day'
    return { from: to - span, to, bucket }
  }

  async function explore() {
    const w = window_()
    try {
      const top = await get(`api/events/top?from=${w.from}&to=${w.to}&limit=10`)
      $('explore-error').hidden = true
      const rows = top.data.map((r) => {
        const tr = row([el('td', r.event_name), numCell(int(r.total_events)), numCell(int(r.unique_users))])
        tr.className = `pick${r.event_name === state.selected ? ' selected' : ''}`
        tr.addEventListener('click', () => {
          state.selected = r.event_name
          explore()
        })
        return tr
      })
      $('top').tBodies[0].replaceChildren(
        ...(rows.length ? rows : [row([el('td', 'no events in this window', 'hint')])]),
      )
      if (!state.selected || !top.data.some((r) => r.event_name === state.selected))
        state.selected = top.data[0]?.event_name ?? null
      if (state.selected) await series(state.selected, w)
      text('series-name', state.selected ?? '–')
    } catch (error) {
      if (error.message === 'API key needed') return
      $('explore-error').hidden = false
      text('explore-error', error.message)
    }
  }

  async function series(name, w) {
    const params = new URLSearchParams({
      event_name: name,
      from: String(w.from),
      to: String(w.to),
      bucket: w.bucket,
    })
    const answer = await get(`api/events/series?${params}`)
    const times = [...new Set(answer.data.map((r) => Date.parse(r.time) / 1000))].sort((a, b) => a - b)
    const channels = [...new Set(answer.data.map((r) => r.channel))].sort()
    const index = new Map(times.map((t, i) => [t, i]))
    const columns = channels.map(() => times.map(() => 0))
    for (const r of answer.data)
      columns[channels.indexOf(r.channel)][index.get(Date.parse(r.time) / 1000)] = r.total_events
    const c = state.charts
    const key = channels.join('\u0000')
    if (c.series && c.seriesKey !== key) {
      c.series.destroy()
      c.series = undefined
    }
    if (!c.series) {
      $('chart-series').replaceChildren()
      c.series = chart(
        'chart-series',
        channels.map((ch, i) => ({
          label: ch,
          stroke: CHANNEL_COLORS[i % CHANNEL_COLORS.length],
          paths: uPlot.paths.stepped?.({ align: 1 }),
        })),
      )
      c.seriesKey = key
    }
    c.series.setData([times, ...columns])
  }

  $('window').addEventListener('change', () => explore())

  poll()
  ready()
  explore()
  setInterval(poll, 1000)
  setInterval(ready, 5000)
  setInterval(explore, 15000)
})()
