/** Kafka client failures as @platformatic/kafka reports them, for the connector's and the sink's tests. */
import { MultipleErrors, ResponseError } from '@platformatic/kafka'

const PRODUCE = 0

/**
 * A failed produce as @platformatic/kafka reports it: the broker's answer (partition → Kafka error
 * code, 0 = written) inside a ResponseError, inside the "Producing messages failed." aggregate.
 */
export function produceFailure(topic: string, codes: Record<number, number>, retries = 0): Error {
  const partitionResponses = Object.entries(codes).map(([index, errorCode]) => ({
    index: Number(index),
    errorCode,
    errorMessage: null,
  }))
  const response = { responses: [{ name: topic, partitionResponses }], throttleTimeMs: 0 }
  const errors: Record<string, [number, null]> = {}
  partitionResponses.forEach((p, j) => {
    if (p.errorCode !== 0) errors[`/responses/0/partition_responses/${j}`] = [p.errorCode, null]
  })
  const one = () => new ResponseError(PRODUCE, 11, errors, response)
  const attempt =
    retries > 0
      ? new MultipleErrors(`produce failed ${retries + 1} times.`, Array.from({ length: retries + 1 }, one))
      : one()
  return new MultipleErrors('Producing messages failed.', [attempt])
}
