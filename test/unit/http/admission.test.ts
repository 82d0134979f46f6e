import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  Admission,
  type AdmissionSignals,
  isRefusal,
  type Refusal,
  Reservation,
} from '../../../src/http/admission.ts'

function setup(
  limits: Partial<{ maxPendingBytes: number; maxWalBacklogBytes: number; queueSize: number }> = {},
) {
  const signals = { queued: 0, backlog: 0, delivered: 0 }
  let now = 1_000_000
  const source: AdmissionSignals = {
    queuedEvents: () => signals.queued,
    walBacklogBytes: () => signals.backlog,
    deliveredPosition: () => signals.delivered,
  }
  const admission = new Admission(
    { maxPendingBytes: 1000, maxWalBacklogBytes: 10_000_000, queueSize: 100, ...limits },
    source,
    { now: () => now },
  )
  return {
    admission,
    signals,
    advance: (ms: number) => {
      now += ms
    },
  }
}

const sized = (bytes: number) => ({ contentLength: bytes })

function refused(verdict: Reservation | Refusal): Refusal {
  assert.ok(isRefusal(verdict), 'expected a refusal')
  return verdict
}

function admitted(verdict: Reservation | Refusal): Reservation {
  assert.ok(verdict instanceof Reservation, `expected admission, got ${JSON.stringify(verdict)}`)
  return verdict
}

/** Admitted, and its whole body arrived (the handler grows the reservation as bytes come in). */
function received(verdict: Reservation | Refusal, bytes: number): Reservation {
  const reservation = admitted(verdict)
  assert.equal(reservation.grow(bytes), undefined, 'the body fits')
  return reservation
}

test('pending bytes: a request whose Content-Length would pass the bound is refused at once', () => {
  const { admission } = setup()
  const first = received(admission.admit(sized(600)), 600)
  assert.equal(admission.pendingBytes, 600)
  const r = refused(admission.admit(sized(401)))
  assert.equal(r.bound, 'pending_bytes')
  assert.equal(r.value, 1001)
  assert.equal(r.limit, 1000)
  assert.equal(r.retryAfterSeconds, 1)
  assert.match(r.message, /1001 bytes.*limit of 1000 bytes \(maxPendingBytes\)/)
  received(admission.admit(sized(400)), 400)
  assert.equal(admission.pendingBytes, 1000)
  first.release()
  assert.equal(admission.pendingBytes, 400)
})

test('pending bytes: a lone request is admitted even when it alone exceeds the bound', () => {
  const { admission } = setup()
  const big = received(admission.admit(sized(5000)), 5000)
  assert.equal(refused(admission.admit(sized(1))).bound, 'pending_bytes')
  big.release()
  admitted(admission.admit(sized(1)))
})

test('slow bodies hold only the bytes they sent: sixteen clients declaring 16 MB and sending one byte starve nobody', () => {
  const { admission } = setup({ maxPendingBytes: 64 * 1024 })
  // Their headers arrive together, while nothing is in memory: all admitted, each sends a byte.
  const verdicts = Array.from({ length: 16 }, () => admission.admit(sized(16 * 1024 * 1024)))
  const slow = verdicts.map((v) => received(v, 1))
  assert.equal(admission.pendingBytes, 16)
  for (let i = 0; i < 100; i++) received(admission.admit(sized(300)), 300).release()
  // Once bytes are in memory, a declared length over what the bound leaves is refused at the door.
  assert.equal(refused(admission.admit(sized(16 * 1024 * 1024))).bound, 'pending_bytes')
  for (const r of slow) r.release()
  assert.equal(admission.pendingBytes, 0)
})

test('a body whose arriving bytes would pass the bound is refused there, unless it is alone', () => {
  const { admission } = setup({ maxPendingBytes: 10_000 })
  const chunked = admitted(admission.admit({ contentLength: undefined }))
  assert.equal(chunked.bytes, 0, 'nothing is reserved before bytes arrive')
  assert.equal(chunked.grow(6000), undefined)
  const other = admitted(admission.admit({ contentLength: undefined }))
  assert.equal(other.grow(3000), undefined)
  const r = other.grow(2000)
  assert.equal(r?.bound, 'pending_bytes')
  assert.equal(r?.value, 11_000)
  assert.equal(admission.pendingBytes, 9000, 'the refused chunk is not added')
  other.release()
  // Alone, a body may pass the bound (at worst one body over it is in memory).
  assert.equal(chunked.grow(7000), undefined)
  assert.equal(admission.pendingBytes, 13_000)
  chunked.resize(300) // its decoded size, never refused
  assert.equal(admission.pendingBytes, 300)
  chunked.release()
})

test('delay: a share of requests is refused while the delay controller says so, named with its delay', () => {
  let share = 0
  const signals: AdmissionSignals = {
    queuedEvents: () => 0,
    walBacklogBytes: () => 0,
    deliveredPosition: () => 0,
    delay: { refuse: () => share > 0, delayMs: () => 37.4, targetMs: 20 },
  }
  const admission = new Admission({ maxPendingBytes: 1000, maxWalBacklogBytes: 1000, queueSize: 10 }, signals)
  admitted(admission.admit(sized(1))).release()
  share = 0.5
  const r = refused(admission.admit(sized(1)))
  assert.deepEqual([r.bound, r.value, r.limit, r.retryAfterSeconds], ['delay', 37.4, 20, 1])
  assert.match(r.message, /waits 37 ms in this process \(event-loop delay\), target 20 ms/)
  assert.equal(admission.overload()?.bound, 'delay')
  assert.deepEqual(
    admission.state().find((b) => b.bound === 'delay'),
    { bound: 'delay', limit: 20, current: 37.4, refused: 1 },
  )
})

test('a reservation is released exactly once, and a released one cannot grow again', () => {
  const { admission } = setup()
  const r = admitted(admission.admit(sized(700)))
  r.release()
  r.release()
  r.resize(900)
  assert.equal(r.grow(5), undefined)
  assert.equal(admission.pendingBytes, 0)
  assert.equal(r.bytes, 0)
  assert.equal(r.released, true)
})

test('queue: refused once queueSize events wait for a group commit; Retry-After 1 s', () => {
  const { admission, signals } = setup({ queueSize: 100 })
  signals.queued = 99
  admitted(admission.admit(sized(1))).release()
  signals.queued = 100
  const r = refused(admission.admit(sized(1)))
  assert.deepEqual([r.bound, r.value, r.limit, r.retryAfterSeconds], ['queue', 100, 100, 1])
  assert.match(r.message, /100 events wait for a WAL group commit, limit 100 \(queueSize\)/)
  assert.equal(admission.pendingBytes, 0, 'a refusal reserves nothing')
})

test('WAL backlog: refused at the bound; Retry-After follows the slowest sink pace', () => {
  const { admission, signals, advance } = setup({ maxWalBacklogBytes: 10_000_000 })
  // The slowest sink delivers 1 MB/s: a tenth of the bound (1 MB) takes 1 s → the floor of 2 s.
  for (let i = 0; i < 4; i++) {
    admission.admit(sized(1)) // samples the cursor
    advance(1000)
    signals.delivered += 1_000_000
  }
  signals.backlog = 10_000_000
  let r = refused(admission.admit(sized(1)))
  assert.equal(r.bound, 'wal_backlog')
  assert.equal(r.retryAfterSeconds, 2)
  assert.match(r.message, /WAL backlog .* 9\.5 MiB \(10000000 bytes\), limit 9\.5 MiB/)
  // 100 KB/s: a tenth of the bound takes 10 s.
  for (let i = 0; i < 12; i++) {
    advance(1000)
    signals.delivered += 100_000
    r = refused(admission.admit(sized(1)))
  }
  assert.ok(r.retryAfterSeconds >= 9 && r.retryAfterSeconds <= 11, `${r.retryAfterSeconds}`)
  // A sink that does not move at all: 30 s.
  for (let i = 0; i < 30; i++) {
    advance(1000)
    r = refused(admission.admit(sized(1)))
  }
  assert.equal(r.retryAfterSeconds, 30)
})

test('bounds are checked in order: backlog, queue, pending bytes', () => {
  const { admission, signals } = setup()
  received(admission.admit(sized(1000)), 1000)
  signals.queued = 100
  signals.backlog = 10_000_000
  assert.equal(refused(admission.admit(sized(10))).bound, 'wal_backlog')
  signals.backlog = 0
  assert.equal(refused(admission.admit(sized(10))).bound, 'queue')
  signals.queued = 0
  assert.equal(refused(admission.admit(sized(10))).bound, 'pending_bytes')
})

test('overload() names a full bound, or one that refused within the last second', () => {
  const { admission, signals, advance } = setup()
  assert.equal(admission.overload(), null)
  signals.backlog = 10_000_000
  assert.equal(admission.overload()?.bound, 'wal_backlog')
  signals.backlog = 0
  assert.equal(admission.overload(), null)
  const held = received(admission.admit(sized(900)), 900)
  refused(admission.admit(sized(200)))
  assert.equal(admission.overload()?.bound, 'pending_bytes')
  advance(999)
  assert.equal(admission.overload()?.bound, 'pending_bytes')
  advance(2)
  assert.equal(admission.overload(), null)
  held.release()
})

test('state() reports each bound with its limit, current value and refusals', () => {
  const { admission, signals } = setup()
  signals.queued = 100
  refused(admission.admit(sized(1)))
  refused(admission.admit(sized(1)))
  signals.queued = 7
  const held = received(admission.admit(sized(42)), 42)
  assert.deepEqual(admission.state(), [
    { bound: 'wal_backlog', limit: 10_000_000, current: 0, refused: 0 },
    { bound: 'queue', limit: 100, current: 7, refused: 2 },
    { bound: 'pending_bytes', limit: 1000, current: 42, refused: 0 },
  ])
  held.release()
})

test('limits must be positive integers', () => {
  const signals = { queuedEvents: () => 0, walBacklogBytes: () => 0, deliveredPosition: () => 0 }
  assert.throws(
    () => new Admission({ maxPendingBytes: 0, maxWalBacklogBytes: 1, queueSize: 1 }, signals),
    /maxPendingBytes/,
  )
})

test('overload() after a refusal says which bound refused, its value then, and how long ago, not the value now', () => {
  const { admission, signals, advance } = setup({ queueSize: 1 })
  signals.queued = 1
  refused(admission.admit(sized(1)))
  signals.queued = 0
  advance(300)
  const o = admission.overload()
  assert.ok(o)
  assert.deepEqual([o.bound, o.value, o.limit], ['queue', 1, 1])
  assert.match(
    o.message,
    /queue bound refused a request 300 ms ago, when 1 event waited for a WAL group commit, limit 1 \(queueSize\); 0 wait now/,
  )
  assert.doesNotMatch(o.message, /0 events wait/)
  // Full now: the value now, said in the present.
  signals.queued = 2
  assert.match(admission.overload()!.message, /2 events wait for a WAL group commit, limit 1 \(queueSize\)/)
})
