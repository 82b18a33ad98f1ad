/**
 * Layer 9, observation: what operators and scripts see of a node. Today the inspection requests
 * (`inspect.members`, `inspect.node`, `inspect.interest`); metrics, structured logs and traces come here too. Lower
 * layers expose plain snapshots and counters; nothing below imports this layer.
 */
export { INSPECT_DHT, INSPECT_INTEREST, INSPECT_MEMBERS, INSPECT_NODE } from "./inspect.ts";
