/**
 * The appends of one group commit, laid out as they will be written.
 *
 * Small payloads (the common ~300-byte event) are copied, header included, into 64 KiB slabs, so a
 * group of 200 appends is one or two iovecs, not 400, and an append allocates nothing but its
 * promise. Large payloads (a batch request of megabytes) are not copied: the slab is cut there
 * and the payload goes to writev as its own iovec. Slabs come back to a small pool once the
 * group's write returned, since the kernel has copied the bytes by then.
 *
 * Waiters are kept in parallel arrays (resolve, reject, end offset, durable flag) rather than an
 * object per append.
 */
import { HEADER_BYTES, writeHeader } from './record.ts'

const SLAB_BYTES = 64 * 1024
/** Payloads at least this large are written from the caller's buffer, not copied. */
const COPY_LIMIT = 16 * 1024
const POOLED_SLABS = 8

export class SlabPool {
  readonly #free: Buffer[] = []

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)
  }

  give(slab: Buffer): void {
    if (this.#free.length < POOLED_SLABS) this.#free.push(slab)
  }
}

type Resolve = (end: number) => void
type Reject = (error: Error) => void

export class Group {
  /** Bytes of all records in the group, headers included. */
  bytes = 0
  records = 0
  readonly #pool: SlabPool
  readonly #chunks: Buffer[] = []
  readonly #slabs: Buffer[] = []
  #slab: Buffer | undefined
  #used = 0
  #chunkStart = 0
  readonly #resolves: Resolve[] = []
  readonly #rejects: Reject[] = []
  /** Offset inside the group just past each record. */
  readonly #ends: number[] = []
  readonly #durable: boolean[] = []
  /** True once the `durable: false` waiters have answered (after the write, before the fsync). */
  #bufferedAnswered = false

  constructor(pool: SlabPool) {
    this.#pool = pool
  }

  /** Queues one record; the promise settles through resolveBuffered/resolveDurable/reject. */
  add(payload: Buffer, durable: boolean): Promise<number> {
    const length = payload.length
    if (length < COPY_LIMIT) {
      const slab = this.#room(HEADER_BYTES + length)
      writeHeader(payload, slab, this.#used)
      payload.copy(slab, this.#used + HEADER_BYTES)
      this.#used += HEADER_BYTES + length
    } else {
      const slab = this.#room(HEADER_BYTES)
      writeHeader(payload, slab, this.#used)
      this.#used += HEADER_BYTES
      this.#cut()
      this.#chunks.push(payload)
    }
    this.bytes += HEADER_BYTES + length
    this.records++
    this.#ends.push(this.bytes)
    this.#durable.push(durable)
    return new Promise<number>((resolve, reject) => {
      this.#resolves.push(resolve)
      this.#rejects.push(reject)
    })
  }

  /** The iovecs to write, in order; call once, when the group is closed. */
  buffers(): Buffer[] {
    this.#cut()
    return this.#chunks
  }

  /** The write returned: `durable: false` appends may answer now. `start` is the group's log position. */
  resolveBuffered(start: number): void {
    for (let i = 0; i < this.records; i++) {
      if (!this.#durable[i]) this.#resolves[i](start + this.#ends[i])
    }
    this.#bufferedAnswered = true
  }

  /** The fdatasync returned: every append still waiting answers. */
  resolveDurable(start: number): void {
    for (let i = 0; i < this.records; i++) {
      if (this.#durable[i] || !this.#bufferedAnswered) this.#resolves[i](start + this.#ends[i])
    }
  }

  /** Fails every append that has not answered yet. */
  reject(error: Error): void {
    for (let i = 0; i < this.records; i++) {
      if (this.#durable[i] || !this.#bufferedAnswered) this.#rejects[i](error)
    }
  }

  /** Returns the slabs to the pool; the group's buffers must not be used afterwards. */
  release(): void {
    for (const slab of this.#slabs) this.#pool.give(slab)
    this.#slabs.length = 0
    this.#slab = undefined
  }

  /** The current slab, with at least `bytes` free (a new one when it is full). */
  #room(bytes: number): Buffer {
    if (this.#slab && this.#slab.length - this.#used >= bytes) return this.#slab
    this.#cut()
    const slab = this.#pool.take()
    this.#slabs.push(slab)
    this.#slab = slab
    this.#used = 0
    this.#chunkStart = 0
    return slab
  }

  /** Ends the current iovec at the slab's fill point. */
  #cut(): void {
    if (this.#slab && this.#used > this.#chunkStart) {
      this.#chunks.push(this.#slab.subarray(this.#chunkStart, this.#used))
      this.#chunkStart = this.#used
    }
  }
}
