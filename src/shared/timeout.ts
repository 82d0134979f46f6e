/**
 * The one way Spillway bounds a wait. `Promise.race` against a bare `setTimeout` leaves the timer
 * running after the promise settled (keeping the process alive, firing into nothing); these
 * helpers clear their timer on every path.
 */

export interface TimeoutOptions {
  /** The timer does not keep the process alive (a shutdown budget, a load run's deadline). */
  readonly unref?: boolean
}

/**
 * `promise`'s outcome if it settles within `ms`, else `onTimeout()`'s (a value, or a throw that
 * rejects). The promise is not cancelled: it keeps running, and a late rejection is handled here,
 * never unhandled. The timer is cleared the moment the promise settles.
 */
export function withTimeout<T, U>(
  promise: PromiseLike<T>,
  ms: number,
  onTimeout: () => U | PromiseLike<U>,
  options?: TimeoutOptions,
): Promise<T | U> {
  return new Promise<T | U>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        resolve(onTimeout())
      } catch (error) {
        reject(error)
      }
    }, ms)
    if (options?.unref) timer.unref()
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
