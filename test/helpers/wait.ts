export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `check` (sync or async) until it returns a truthy value (returned), or fails after
 * `timeoutMs` naming `what`. The first polls come 2 ms apart, doubling to 100 ms, so a unit test
 * waiting on an in-memory loop is not slowed and a test waiting on a process does not spin.
 */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
    const value = await check()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(pause)
  }
}
