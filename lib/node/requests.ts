/**
 * Every request a node answers, in one registry (lib/peer/requests.ts: each method declared once
 * with its fields, checked by lib/wire's one field checker):
 *
 * | method | from | served by |
 * |---|---|---|
 * | `ping`, `nat.*`, `relay.*` | nodes | traversal (lib/nat/traversal.ts) |
 * | `membership.msg` | nodes | membership (membership.ts) |
 * | `dht.msg` | nodes | the DHT (dht.ts) |
 * | `nat.ping` | clients | traversal: reach a node by id and ping it (`macula ping`) |
 * | `inspect.members`, `inspect.node`, `inspect.interest`, `inspect.dht` | clients | this node's views (`macula inspect`) |
 */
import { NAT_PING, type Traversal } from "../nat/mod.ts";
import { INSPECT_DHT, INSPECT_INTEREST, INSPECT_MEMBERS, INSPECT_NODE } from "../observe/mod.ts";
import { NotFoundError, type RequestRegistry } from "../peer/mod.ts";
import type { DhtGlue } from "./dht.ts";
import type { MembershipGlue } from "./membership.ts";
import type { InterestSnapshot, NodeSnapshot } from "./snapshot.ts";

/** What the node's own requests read. */
export interface RequestsHost {
  traversal: Traversal;
  membership: MembershipGlue;
  snapshot(): NodeSnapshot;
  /** Whether a session with node `id` is open here (a route, a client, any other). */
  hasSession(id: string): boolean;
  /** `macula inspect interest`. */
  interest(): InterestSnapshot;
  /** `dht.msg`, and `macula inspect dht`. */
  dht: DhtGlue;
}

/** Registers every request method the node answers in `r`. */
export function registerRequests(r: RequestRegistry, h: RequestsHost): void {
  h.traversal.register(r);
  h.membership.register(r);
  h.dht.register(r);
  r.on(NAT_PING, (q) => {
    // A node id nobody in the mesh has is answered at once, not after every path was tried
    // (a node with a session here counts, even before gossip has brought its record).
    if (!h.membership.knows(q.target) && !h.hasSession(q.target)) {
      throw new NotFoundError(`${q.target} is not a member this node knows`);
    }
    return h.traversal.reach(q.target, {
      relayOnly: q.relayOnly === true,
      upgrade: q.upgrade === true,
    });
  });
  r.on(INSPECT_MEMBERS, () => h.membership.members());
  r.on(INSPECT_NODE, () => h.snapshot());
  r.on(INSPECT_INTEREST, () => h.interest());
  r.on(INSPECT_DHT, () => h.dht.snapshot());
}
