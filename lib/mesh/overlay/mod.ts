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
export { compareXor, idHex, type Member, MemberSet, SortedMembers } from "./members.ts";
export { OVERLAY_AVOID_MS } from "./overlay.ts";
export { type ComponentStats, type DegreeStats, type DiameterResult, Graph } from "./graph.ts";
