/**
 * Layer 9, observation: what operators and scripts see of a node. Today the inspection requests
 * (`inspect.members`, `inspect.node`, `inspect.interest`), the admin listener (`startAdmin`:
 * /metrics, /healthz, /readyz, the topology page), and tracing: spans exported over
 * OTLP/HTTP (`startTracing`, docs/tracing.md). Lower layers expose plain snapshots and counters;
 * nothing below imports this layer.
 */
export { INSPECT_DHT, INSPECT_INTEREST, INSPECT_MEMBERS, INSPECT_NODE } from "./inspect.ts";
export {
  otlpProblem,
  startTracing,
  type Tracing,
  TRACING_DEFAULTS,
  type TracingOptions,
  type TracingStats,
} from "./trace.ts";
export { type Admin, ADMIN_LIMITS, ADMIN_PATHS, startAdmin } from "./admin.ts";
export { AdminError } from "./errors.ts";
export { METRICS, NodeMetrics } from "./metrics.ts";
export type { AdminNode } from "./view.ts";
