/** A byte count as people read it in messages: `812 bytes`, `3.2 MiB` (1024-based). */
export function formatBytes(bytes: number): string {
  if (bytes < 10 * 1024) return `${bytes} bytes`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}
