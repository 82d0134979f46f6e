/** Admission's series (docs/ARCHITECTURE.md "Admission"); each worker has its own bounds. */
import { Gauge, type Registry } from 'prom-client'
import { monotonic } from './series.ts'

export interface AdmissionReading {
  readonly bound: string
  readonly limit: number
  readonly current: number
  readonly refused: number
}

export function registerAdmissionMetrics(
  registry: Registry,
  admission: () => readonly AdmissionReading[],
): void {
  new Gauge({
    name: 'admission_limit',
    help: 'Configured limit of each admission bound (bytes, or events for queue); with workers, each worker has its own.',
    labelNames: ['bound'],
    registers: [registry],
    aggregator: 'max',
    collect() {
      for (const b of admission()) this.set({ bound: b.bound }, b.limit)
    },
  })
  new Gauge({
    name: 'admission_current',
    help: 'Current value of each admission bound, to compare with admission_limit; with workers, the highest worker.',
    labelNames: ['bound'],
    registers: [registry],
    aggregator: 'max',
    collect() {
      for (const b of admission()) this.set({ bound: b.bound }, b.current)
    },
  })
  monotonic(
    registry,
    'admission_refused_total',
    'Requests refused with 503 by admission control, by the bound that refused them.',
    ['bound'],
    () => admission().map((b) => [{ bound: b.bound }, b.refused]),
  )
}
