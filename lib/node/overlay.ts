/**
 * The overlay on a running node (docs/overlay.md): the sans-IO `Overlay` core of lib/mesh, fed
 * membership changes and route ups and downs, driven by the one `Driver` (its plan is taken once
 * a burst of changes is over, and every 30 s it forgets the peers it stopped dialing), and its
 * plan carried out: a route to each chosen neighbour (reached by id: direct, punched or
 * relayed), unwanted routes let go without loss (drained, then closed; a seed's only once the
 * node has another route).
 */
import { nodeIdFromText, nodeIdText } from "../identity/mod.ts";
import { Overlay, type OverlayPlan } from "../mesh/mod.ts";
import { PING } from "../nat/mod.ts";
import { ask, type PeerSession } from "../peer/mod.ts";
import { Driver, type Log, monoNow } from "../util/mod.ts";
import type { BusLink } from "./links.ts";
import { RUNTIME } from "./defaults.ts";
import type { RouteTable } from "./routes.ts";

/** What the overlay needs from the node. */
export interface OverlayHost {
  readonly nodeId: string;
  readonly routes: RouteTable;
  /** Whether the node is stopping (no dials then). */
  stopping(): boolean;
  /** A session to `id`, the best way available (traversal). */
  connect(id: string): Promise<{ session: PeerSession }>;
  /** The route link on `s`: the existing one, or a new dialed route. */
  route(s: PeerSession): Promise<BusLink | undefined>;
  /** Lets a route go without loss: drained, then closed with `reason` (lib/node/links.ts). */
  retire(link: BusLink, reason: string): void;
  /** True when membership holds `id` dead or left. */
  gone(id: string): boolean;
  readonly log: Log;
}

/** The overlay of one node. */
export class OverlayGlue {
  readonly core: Overlay;
  readonly #driver: Driver<OverlayPlan>;
  /** Peer node ids an overlay dial is in flight to. */
  readonly #dialing = new Set<string>();
  readonly #seedsToClose = new Set<string>();

  constructor(private readonly h: OverlayHost, k: number) {
    this.core = new Overlay({
      self: nodeIdFromText(h.nodeId),
      k,
      // Two XOR-nearest neighbours, and never more than half of k: the nearest-only graph is
      // many islands (at k = 2 with both near, 60 nodes fall into up to 16 components), and the
      // random half is what keeps the mesh in one piece (docs/overlay.md).
      near: Math.min(2, Math.floor(k / 2)),
      rng: Math.random,
      now: monoNow(),
    });
    this.#driver = new Driver(this.core, {
      act: (plan) => this.#carryOut(plan),
      coalesce: true,
      onError: (e) => h.log.error("overlay.error", `overlay: ${(e as Error).message}`),
    });
    this.#driver.poke();
  }

  /** A member became alive, died or left. */
  memberChanged(kind: "alive" | "dead" | "left", id: string, addr: string): void {
    if (id === this.h.nodeId) return;
    const bytes = nodeIdFromText(id);
    const route = this.h.routes.get(id);
    if (kind === "dead" && route && route.session.conn.isOpen && !route.session.closing) {
      // A second opinion over the route before dropping it: a member declared dead while it
      // still answers here is alive (behind a NAT, SWIM may not reach it yet; it will refute).
      // If it does not answer, the route goes now (not at the idle timeout, 30 s later: what is
      // forwarded into it meanwhile is lost) and the overlay lets the member go.
      ask(route.session, PING, {}, { timeoutMs: RUNTIME.secondOpinionMs }).then(
        () =>
          this.h.log.info(
            "overlay.kept",
            `member ${id.slice(0, 12)}… declared dead answers on its route: kept`,
            { peer: id },
          ),
        () => {
          this.core.memberDown(bytes);
          this.#driver.poke();
          if (route.session.conn.isOpen && !route.session.closing) {
            void route.session.close("declared dead, and silent on this route").catch(() => {});
          }
        },
      );
      return;
    }
    if (kind === "alive") this.core.memberUp(bytes, addr);
    else this.core.memberDown(bytes);
    this.#driver.poke();
  }

  /** A route came up (`dialed`: by this node). */
  routeUp(peer: string, dialed: boolean): void {
    this.core.linkUp(nodeIdFromText(peer), dialed ? "out" : "in");
    this.#closeSeeds();
    this.#driver.poke();
  }

  /** A route went down (not replaced by another route to the same peer). */
  routeDown(peer: string): void {
    this.#seedsToClose.delete(peer);
    this.core.linkDown(nodeIdFromText(peer));
    // A member kept after a "dead" (it answered on this route) goes once the route does.
    if (this.h.gone(peer)) this.core.memberDown(nodeIdFromText(peer));
    this.#driver.poke();
  }

  stop(): void {
    this.#driver.stop();
  }

  #carryOut(plan: OverlayPlan): void {
    if (this.h.stopping()) return;
    for (const c of plan.connect) void this.#dial(nodeIdText(c.id), c.addr);
    for (const id of plan.disconnect) {
      const peer = nodeIdText(id);
      const link = this.h.routes.get(peer);
      if (!link) continue;
      // A seed's route is the way in: kept until a route the overlay made is up.
      if (link.seed && !this.#joined()) this.#seedsToClose.add(peer);
      else this.h.retire(link, "overlay: no longer a neighbour");
    }
  }

  /** Whether a route that is not a seed's is up (the node is in the mesh on its own). */
  #joined(): boolean {
    for (const l of this.h.routes.values()) if (!l.seed) return true;
    return false;
  }

  /**
   * Seed routes the overlay let go before the node had a route of its own: once it has one, they
   * are reported up again, so the overlay's next plan decides about them afresh (closes them, or
   * keeps one it has chosen meanwhile). Its earlier disconnect was never carried out.
   */
  #closeSeeds(): void {
    if (this.#seedsToClose.size === 0 || !this.#joined()) return;
    for (const peer of this.#seedsToClose) {
      const link = this.h.routes.get(peer);
      if (link) this.core.linkUp(nodeIdFromText(peer), link.dialed ? "out" : "in");
    }
    this.#seedsToClose.clear();
  }

  /**
   * One attempt at a route to an overlay neighbour: over a session to it, direct, punched or
   * relayed (lib/nat/traversal.ts); a failure is reported to the overlay.
   */
  async #dial(id: string, addr: string): Promise<void> {
    if (this.h.routes.has(id) || this.#dialing.has(id) || this.h.stopping()) return;
    this.#dialing.add(id);
    try {
      const { session } = await this.h.connect(id);
      const link = await this.h.route(session);
      if (!link && !this.h.routes.has(id)) this.core.linkDown(nodeIdFromText(id));
    } catch (e) {
      if (!this.h.stopping()) {
        this.h.log.warn(
          "overlay.dial_failed",
          `overlay: no route to ${id.slice(0, 12)}… ${addr}: ${(e as Error).message}`,
          { peer: id, cause: (e as Error).message },
        );
        this.core.linkDown(nodeIdFromText(id));
      }
    } finally {
      this.#dialing.delete(id);
    }
  }
}
