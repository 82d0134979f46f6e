/**
 * Closes the connections node:cluster handed to a worker that died before it took them.
 *
 * With round-robin scheduling (the default but on Windows) the primary accepts each connection
 * and sends its socket to a worker with a `newconn` message, keeping its own copy until the worker
 * answers "accepted" (then it closes the copy). A worker that dies in between never answers, and
 * node:cluster forgets the copy without closing it: the client's connection stays open with
 * nobody to answer it, forever (Node 24). It is at most one connection per dying worker (a worker
 * gets its next one only after it answered), but a client without a timeout hangs on it.
 *
 * The guard watches the `newconn` messages the primary sends to one worker and their answers, and
 * when the worker exits closes the sockets still unanswered: the client sees its connection close,
 * as it does for the connections the worker had taken. It reads node:cluster's internal messages
 * (`{ cmd: 'NODE_CLUSTER', act: 'newconn', seq }`, answered by `{ ack: seq }`); should those change,
 * it finds nothing to close, and test/crash/worker-handoff.test.ts says so.
 */
import type { ChildProcess } from 'node:child_process'
import type { Worker } from 'node:cluster'

interface ClusterMessage {
  readonly cmd?: unknown
  readonly act?: unknown
  readonly seq?: unknown
  readonly ack?: unknown
}

interface Closable {
  close(): void
}

const isClusterMessage = (message: unknown): message is ClusterMessage =>
  typeof message === 'object' && message !== null && (message as ClusterMessage).cmd === 'NODE_CLUSTER'

/** Guards `worker`'s hand-offs; `onClosed` gets how many were closed at its exit (when any). */
export function guardHandoffs(worker: Worker, onClosed: (count: number) => void): void {
  const child = worker.process as ChildProcess
  const unanswered = new Map<number, Closable>()
  const send = child.send.bind(child) as (...args: unknown[]) => boolean
  child.send = ((message: unknown, handle?: unknown, ...rest: unknown[]) => {
    if (
      isClusterMessage(message) &&
      message.act === 'newconn' &&
      typeof message.seq === 'number' &&
      typeof (handle as Closable | undefined)?.close === 'function'
    )
      unanswered.set(message.seq, handle as Closable)
    return send(message, handle, ...rest)
  }) as ChildProcess['send']
  child.on('internalMessage', (message: unknown) => {
    if (isClusterMessage(message) && typeof message.ack === 'number') unanswered.delete(message.ack)
  })
  child.once('exit', () => {
    const count = unanswered.size
    for (const handle of unanswered.values()) handle.close()
    unanswered.clear()
    if (count > 0) onClosed(count)
  })
}
