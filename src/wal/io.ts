/**
 * The few file-system calls the writer makes, behind one small object. Production uses `nodeWalIo`
 * (fs/promises: every call runs in the libuv pool, so the event loop never blocks on the disk);
 * tests wrap it to count fdatasyncs or to make one write fail with ENOSPC, which no real disk
 * does on demand.
 */
import { type FileHandle, open, unlink } from 'node:fs/promises'
import { syncDir } from '../shared/durable-file.ts'

export interface WalIo {
  open(path: string, flags: string): Promise<FileHandle>
  /** One positional writev; resolves with the bytes written (possibly fewer than asked). */
  writev(file: FileHandle, buffers: Buffer[], position: number): Promise<number>
  datasync(file: FileHandle): Promise<void>
  truncate(file: FileHandle, length: number): Promise<void>
  syncDir(dir: string): Promise<void>
  unlink(path: string): Promise<void>
}

export const nodeWalIo: WalIo = {
  open: (path, flags) => open(path, flags, 0o644),
  writev: async (file, buffers, position) => (await file.writev(buffers, position)).bytesWritten,
  datasync: (file) => file.datasync(),
  truncate: (file, length) => file.truncate(length),
  syncDir,
  unlink,
}
