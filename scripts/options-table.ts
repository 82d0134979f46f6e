/** Prints the README's option table from the config schema: `node scripts/options-table.ts`. */
import { OPTIONS } from '../src/config/schema.ts'

const rows = Object.entries(OPTIONS).map(([name, o]) => {
  const def = Array.isArray(o.default) ? o.default.join(',') : String(o.default)
  return `| \`${name}\` | \`${o.env.join('`, `')}\` | \`--${o.flag}\` | \`${def === '' ? '(none)' : def}\` | ${o.doc} |`
})
process.stdout.write(
  ['| option (config file) | env | flag | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n') +
    '\n',
)
