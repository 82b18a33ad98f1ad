/** The deterministic simulator for sans-IO cores. See docs/simulator.md. */
export {
  type CoreFactory,
  DROP_REASONS,
  type DropReason,
  type Latency,
  type MessageOutcome,
  type NodeStats,
  type SimOptions,
  type SimStats,
  Simulator,
} from "./sim.ts";
export { deriveRng } from "./rng.ts";
