/**
 * Layer 7, the deterministic simulator: the same sans-IO cores as real nodes (lib/mesh) on
 * virtual time, over a seeded network with latency, loss, partitions, crashes and pauses; and the
 * scenarios behind `macula sim` (membership, with the overlay built over its final view; routing,
 * real routers over the overlay). Every
 * run reproduces from its seed. The DHT: real Kademlia cores (lib/sim/dht.ts). See docs/simulator.md.
 */
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
export {
  type MembershipReport,
  type MembershipSimOptions,
  type OverlayReport,
  runMembershipSim,
} from "./membership.ts";
export {
  RoutedMesh,
  type RoutedMeshOptions,
  RouterNode,
  type RoutingReport,
  type RoutingSimOptions,
  runRoutingSim,
  SimClient,
  type Spread,
} from "./routing.ts";
export { OverlayMesh, type OverlayMeshOptions, randomId } from "./overlay.ts";
export { SimError } from "./errors.ts";
export { type DhtReport, type DhtSimOptions, runDhtSim } from "./dht.ts";
