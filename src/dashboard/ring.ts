/** A fixed-capacity ring: pushing past the capacity drops the oldest. */
export class Ring<T> {
  readonly capacity: number
  readonly #items: T[] = []
  #start = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer')
    this.capacity = capacity
  }

  get length(): number {
    return this.#items.length
  }

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item)
    else {
      this.#items[this.#start] = item
      this.#start = (this.#start + 1) % this.capacity
    }
  }

  /** Oldest first. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.#items.length) return undefined
    return this.#items[(this.#start + index) % this.#items.length]
  }

  last(): T | undefined {
    return this.at(this.#items.length - 1)
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)]
  }
}
