/** The k-regular overlay policy (sans-IO) and graph metrics for simulated meshes. */
export {
  type LinkDir,
  type NeighbourRole,
  Overlay,
  type OverlayLink,
  type OverlayNeighbour,
  type OverlayOptions,
  type OverlayPlan,
  type OverlaySnapshot,
} from "./overlay.ts";
export { compareXor, idHex, type Member, MemberSet, MemberTable } from "./members.ts";
export { type ComponentStats, type DegreeStats, type DiameterResult, Graph } from "./graph.ts";
