/**
 * CRC-32C (Castagnoli), the checksum of every WAL record. The native binding uses the CPU's
 * crc32 instructions (SSE4.2 / ARMv8), which is why it is preferred over a JS table: it runs on
 * every append, on the event loop.
 */
import { crc32c as native } from '@node-rs/crc32'

/** CRC-32C of `bytes`, as an unsigned 32-bit integer. */
export function crc32c(bytes: Uint8Array): number {
  // The binding returns an unsigned value already; `>>> 0` keeps the contract explicit.
  return native(bytes) >>> 0
}
