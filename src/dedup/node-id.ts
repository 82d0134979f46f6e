/**
 * This node's identity in the shared dedup layer: a random id kept in `<data dir>/node-id`, made
 * on first start. It must outlive restarts — after a crash the node redelivers its own records and
 * must recognise its own L2 claims (redis.ts) — and it must differ between nodes, which a data
 * directory of their own guarantees.
 */
import { randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../shared/durable-file.ts'

const FILE = 'node-id'
const VALID = /^[A-Za-z0-9._-]{1,64}$/

export async function loadNodeId(dataDir: string): Promise<string> {
  const path = join(dataDir, FILE)
  try {
    const id = readFileSync(path, 'utf8').trim()
    if (VALID.test(id)) return id
    throw new Error(
      `${path} does not hold a node id (${JSON.stringify(id.slice(0, 80))}); delete it to make a new one`,
    )
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  mkdirSync(dataDir, { recursive: true })
  const id = randomUUID()
  await writeFileDurably(path, `${id}\n`)
  return id
}
