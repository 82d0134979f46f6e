/**
 * `--name value`, `--name=value` and bare `--flag` (→ "true"); everything else is positional.
 * `flags` keeps a repeated flag's last value, `lists` every value in order (`--header A --header B`).
 */
export function parseArgs(argv: readonly string[]): {
  positional: string[]
  flags: Record<string, string>
  lists: Record<string, string[]>
} {
  const positional: string[] = []
  const flags: Record<string, string> = {}
  const lists: Record<string, string[]> = {}
  const set = (name: string, value: string) => {
    flags[name] = value
    lists[name] ??= []
    lists[name].push(value)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') {
      positional.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    if (eq > 0) {
      set(arg.slice(2, eq), arg.slice(eq + 1))
    } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
      set(arg.slice(2), argv[++i])
    } else {
      set(arg.slice(2), 'true')
    }
  }
  return { positional, flags, lists }
}
