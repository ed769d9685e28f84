import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/**
 * Prometheus metrics of the fault proxies and the chaos API (prom-client, text format on
 * GET /metrics). Names end in their units; labels are low-cardinality (upstream, method, type).
 */
export type Metrics = ReturnType<typeof createMetrics>

export function createMetrics() {
  const registry = new Registry()
  const requests = new Counter({
    name: 'forkchaos_rpc_requests_total',
    help: 'JSON-RPC calls through the proxy, by upstream, method and outcome (ok, error, dropped).',
    labelNames: ['upstream', 'method', 'outcome'] as const,
    registers: [registry],
  })
  const errors = new Counter({
    name: 'forkchaos_rpc_errors_total',
    help: 'JSON-RPC calls that ended in an error or were dropped, by upstream and method.',
    labelNames: ['upstream', 'method'] as const,
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'forkchaos_rpc_request_duration_seconds',
    help: 'Time from request to answer through the proxy, by upstream and method.',
    labelNames: ['upstream', 'method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  // In flight = calls the proxy has taken in minus calls it has answered, read at scrape time.
  const watched = new Map<string, () => number>()
  const completed = new Map<string, number>()
  new Gauge({
    name: 'forkchaos_rpc_in_flight_requests',
    help: 'JSON-RPC calls the proxy has taken in and not yet answered, by upstream.',
    labelNames: ['upstream'] as const,
    registers: [registry],
    collect() {
      for (const [upstream, arrived] of watched) this.set({ upstream }, Math.max(0, arrived() - (completed.get(upstream) ?? 0)))
    },
  })
  const bytes = new Counter({
    name: 'forkchaos_proxy_bytes_total',
    help: 'Bytes through a proxy, by proxy and direction (in = from clients, out = to clients).',
    labelNames: ['proxy', 'direction'] as const,
    registers: [registry],
  })
  const activeFaults = new Gauge({
    name: 'forkchaos_active_faults',
    help: 'Faults active now, by type.',
    labelNames: ['type'] as const,
    registers: [registry],
  })
  const faultWindow = new Gauge({
    name: 'forkchaos_fault_window',
    help: 'One series per injected fault: 1 while active, 0 after revert (annotate dashboards with it). Kept for the chaos API\'s last 100 ended experiments.',
    labelNames: ['id', 'type', 'target'] as const,
    registers: [registry],
  })
  return {
    registry,
    observeRpc(upstream: string, event: { method: string; outcome: string; latencyMs: number; bytesIn: number; bytesOut: number }) {
      completed.set(upstream, (completed.get(upstream) ?? 0) + 1)
      const method = event.method.length > 64 ? 'invalid' : event.method
      requests.inc({ upstream, method, outcome: event.outcome })
      if (event.outcome !== 'ok') errors.inc({ upstream, method })
      latency.observe({ upstream, method }, event.latencyMs / 1000)
      bytes.inc({ proxy: upstream, direction: 'in' }, event.bytesIn)
      bytes.inc({ proxy: upstream, direction: 'out' }, event.bytesOut)
    },
    /** Reports in-flight calls of a proxy from its arrival counter. */
    watchRpcProxy: (upstream: string, arrived: () => number) => watched.set(upstream, arrived),
    tcpBytes: (proxy: string, direction: 'in' | 'out', n: number) => bytes.inc({ proxy, direction }, n),
    faultStarted(id: string, type: string, target: string) {
      activeFaults.inc({ type })
      faultWindow.set({ id, type, target }, 1)
    },
    faultStopped(id: string, type: string, target: string) {
      activeFaults.dec({ type })
      faultWindow.set({ id, type, target }, 0)
    },
    /** Drops an ended fault's `forkchaos_fault_window` series, so series stay bounded. */
    faultForgotten(id: string, type: string, target: string) {
      faultWindow.remove({ id, type, target })
    },
    text: () => registry.metrics(),
    contentType: registry.contentType,
  }
}
