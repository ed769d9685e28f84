import { define } from '../../Check.js'

/** Liveness: no validator process grows past `maxRssMb` during the window. */
export const memory = define({
  name: 'memory',
  target: 'devnet',
  summary: 'no validator process grows past maxRssMb in the window',
  params: { type: 'object', additionalProperties: false, required: ['maxRssMb'], properties: { maxRssMb: { type: 'number', exclusiveMinimum: 0, maximum: 65_536 } } },
  evaluate(series, window, body: { maxRssMb: number }) {
    const inWindow = series.probe.rssMb.filter((r) => r.t >= window.from && r.t <= window.to)
    const worst = inWindow.reduce((a, r) => (r.mb > a.mb ? r : a), { t: 0, node: -1, mb: 0 })
    return { ok: inWindow.length > 0 && worst.mb <= body.maxRssMb, observed: `max RSS ${worst.mb.toFixed(0)} MB (validator ${worst.node})`, expected: `≤ ${body.maxRssMb} MB` }
  },
})
