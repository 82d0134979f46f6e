import type { IntakeContext, IntakeLimits } from '../../../src/intake/types.ts'
import { eventBody } from '../../helpers/events.ts'

/** 2024-08-12T15:13:32.400Z: a fixed server clock, so time rules are exact. */
export const RECEIVED_AT = 1_723_475_612_400
export const NOW_SECONDS = 1_723_475_612

export const LIMITS: IntakeLimits = Object.freeze({
  maxEventBytes: 64 * 1024,
  maxStringLength: 1024,
  maxTags: 100,
  maxDepth: 8,
  clockSkewSeconds: 300,
})

export const CTX: IntakeContext = Object.freeze({ receivedAt: RECEIVED_AT })

/** The example event of docs/ARCHITECTURE.md "The event" (test/helpers/events.ts), one minute old. */
export function validBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...eventBody({ timestamp: NOW_SECONDS - 60 }), ...overrides }
}

/** A body without some fields. */
export function without(body: Record<string, unknown>, ...fields: string[]): Record<string, unknown> {
  const copy = { ...body }
  for (const field of fields) delete copy[field]
  return copy
}
