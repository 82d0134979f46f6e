/**
 * What a failure of @platformatic/kafka is made of, in words: the library aggregates errors
 * (per broker, per partition) and chains causes, and Kafka names its protocol errors
 * (`MESSAGE_TOO_LARGE`, `apiId`). Decisions read the names (src/sinks/kafka/verdict.ts); messages,
 * logs and dead-letter reasons read `describe`. Shared by the `kafka` sink and `consume --from kafka`.
 */
import { protocolErrors } from '@platformatic/kafka'

/** How much of the failure goes into the error (and the dead-letter reason). */
export const MAX_REASON_CHARS = 512

/** What an error of the library is made of: the errors it aggregates and their causes, flattened. */
export interface ErrorLeaf extends Error {
  readonly code?: string
  /** Kafka's error name (`MESSAGE_TOO_LARGE`) on protocol errors. */
  readonly apiId?: string
  readonly apiCode?: number
  readonly serverErrorMessage?: string | null
  readonly canRetry?: boolean
}

/** Every error in the tree that aggregates no others (AggregateError's `errors`, then `cause`). */
export function leaves(error: unknown): ErrorLeaf[] {
  const found: ErrorLeaf[] = []
  const walk = (value: unknown, depth: number) => {
    if (!(value instanceof Error) || depth > 8) return
    const children = (value as AggregateError).errors
    if (Array.isArray(children) && children.length > 0) {
      for (const child of children) walk(child, depth + 1)
      return
    }
    found.push(value as ErrorLeaf)
  }
  walk(error, 0)
  return found
}

/** `MESSAGE_TOO_LARGE: The request included a message larger than… (broker's own words)`. */
export function describeCode(name: string, serverMessage?: string | null): string {
  const known = (protocolErrors as Record<string, { message?: string }>)[name]?.message
  return `${name}${known ? `: ${known}` : ''}${serverMessage ? ` (${serverMessage})` : ''}`
}

/** The failure in one bounded line: each distinct underlying error once. */
export function describe(error: unknown): string {
  const parts = new Set<string>()
  for (const leaf of leaves(error)) {
    if (leaf.apiId) {
      parts.add(describeCode(leaf.apiId, leaf.serverErrorMessage))
      continue
    }
    const cause = leaf.cause as NodeJS.ErrnoException | undefined
    const detail = cause?.code ?? cause?.message
    parts.add(detail && !leaf.message.includes(detail) ? `${leaf.message} (${detail})` : leaf.message)
  }
  if (parts.size === 0) parts.add(error instanceof Error ? error.message : String(error))
  const text = [...parts].join('; ')
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text
}
