/**
 * Runs the real `spillway serve` (or `spillway consume`) as a child process, as a user would, on
 * free ports and a data directory of the test's own; resolves once it logged that it started.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const ROOT = new URL('../../', import.meta.url).pathname
export const NODE = process.execPath

export interface ServerProcess {
  /** The API address (serve only; '' for consume). */
  readonly url: string
  /** The operations port (Prometheus `GET /metrics`). */
  readonly metricsUrl: string
  readonly proc: ChildProcess
  readonly logFile: string
  kill(signal: NodeJS.Signals): void
  /** Resolves with the exit code (null when killed by a signal). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export async function startServerProcess(
  dataDir: string,
  env: Record<string, string> = {},
  args: string[] = [],
  command: 'serve' | 'consume' = 'serve',
): Promise<ServerProcess> {
  const started = command === 'serve' ? 'ServerStarted' : 'ConsumerStarted'
  const logFile = join(dataDir, `server-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.log`)
  const log = createWriteStream(logFile)
  const proc = spawn(NODE, [join(ROOT, 'src/cli/main.ts'), command, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      HTTP_PORT: '0',
      METRICS_PORT: '0',
      SPILLWAY_HOST: '127.0.0.1',
      SPILLWAY_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exit = once(proc, 'exit').then(
    ([code, signal]) => ({ code, signal }) as { code: number | null; signal: NodeJS.Signals | null },
  )
  proc.stderr!.pipe(log, { end: false })
  const { url, metricsUrl } = await new Promise<{ url: string; metricsUrl: string }>((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! })
    const timer = setTimeout(
      () => reject(new Error(`server did not start within 30 s; see ${logFile}`)),
      30_000,
    )
    lines.on('line', (line) => {
      log.write(`${line}\n`)
      try {
        const entry = JSON.parse(line)
        if (entry.msg === started) {
          clearTimeout(timer)
          resolve({ url: entry.url ?? '', metricsUrl: entry.metricsUrl })
        }
      } catch {}
    })
    exit.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`server exited (code ${code}, signal ${signal}) before it started; see ${logFile}`))
    })
  })
  return {
    url,
    metricsUrl,
    proc,
    logFile,
    kill: (signal) => proc.kill(signal),
    exited: () => exit,
  }
}
