/**
 * UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then 74 random bits, so ids sort by the
 * time they were made — and a server's dedup key for an event is fixed when `track()` is called,
 * before any retry. Within one millisecond the 12-bit `rand_a` field is a counter started at a
 * random value below 2048 (RFC 9562 §6.2, method 1), so ids made by one process stay in order; a
 * clock that steps back reuses the last millisecond rather than going back with it.
 */

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

let lastMs = -1
let counter = 0

export function uuidv7(now: number = Date.now()): string {
  const random = new Uint8Array(10)
  crypto.getRandomValues(random)
  let ms = Math.max(now, lastMs)
  if (ms === lastMs) {
    counter++
    if (counter > 0xfff) {
      ms++
      counter = random[0] & 0x7ff
    }
  } else {
    counter = ((random[0] << 8) | random[1]) & 0x7ff
  }
  lastMs = ms
  const bytes = new Uint8Array(16)
  // 48-bit big-endian milliseconds; the high 16 bits by division, as bit operators stop at 32.
  const high = Math.floor(ms / 0x1_0000_0000)
  const low = ms >>> 0
  bytes[0] = (high >>> 8) & 0xff
  bytes[1] = high & 0xff
  bytes[2] = (low >>> 24) & 0xff
  bytes[3] = (low >>> 16) & 0xff
  bytes[4] = (low >>> 8) & 0xff
  bytes[5] = low & 0xff
  bytes[6] = 0x70 | (counter >>> 8)
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | (random[2] & 0x3f)
  for (let i = 9; i < 16; i++) bytes[i] = random[i - 6]
  let out = ''
  for (let i = 0; i < 16; i++) {
    out += HEX[bytes[i]]
    if (i === 3 || i === 5 || i === 7 || i === 9) out += '-'
  }
  return out
}
