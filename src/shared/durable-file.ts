/**
 * Making file-system changes survive a crash or a power loss: the two steps every durable file of
 * the data directory uses (WAL segments, cursors, the node id, dead letters, the store-loss ledger).
 */
import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * fsync of a directory: makes a created, renamed or removed file name durable. Without it a new
 * file can vanish after a power loss even though its data was fdatasync'd.
 */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Replaces `path` with `text` so that after a crash or power loss it holds either the old or the
 * new text, whole: write a temp file, fsync it, rename it over, fsync the directory.
 */
export async function writeFileDurably(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`
  const file = await open(tmp, 'w')
  try {
    await file.writeFile(text)
    await file.sync()
  } finally {
    await file.close()
  }
  await rename(tmp, path)
  await syncDir(dirname(path))
}
