/**
 * The route table: one route (a bus link to a peer node) per peer, and the rule that keeps one
 * when two nodes make two (they dialed each other at once, or a relayed and a direct session
 * both carry one):
 *
 * - a route that is not relayed beats one that is;
 * - else the route whose QUIC connection the smaller node id dialed wins.
 *
 * Both ends apply the same rule, so both keep the same route and close the other
 * (DUPLICATE_ROUTE). A route to a configured seed stays marked as one whichever session carries
 * it (it is kept while it is the node's only route: lib/node/overlay.ts).
 */
import type { PeerSession } from "../peer/mod.ts";
import type { BusLink } from "./links.ts";

/** Application close code for a duplicate route between two nodes. */
export const DUPLICATE_ROUTE = 0x13;

/** What the table needs to know about sessions. */
export interface RouteTableHost {
  readonly nodeId: string;
  /** True for a session whose packets go through a relay. */
  relayed(s: PeerSession): boolean;
  /** Takes a route that lost to another out of the bus (`replaced`: the peer keeps a route). */
  replace(old: BusLink): void;
}

/** Peer node id → its route. */
export class RouteTable {
  readonly #routes = new Map<string, BusLink>();
  #emptied: (() => void)[] = [];

  constructor(private readonly h: RouteTableHost) {}

  get size(): number {
    return this.#routes.size;
  }

  /** The route to `peer`, if any. */
  get(peer: string): BusLink | undefined {
    return this.#routes.get(peer);
  }

  has(peer: string): boolean {
    return this.#routes.has(peer);
  }

  /** Peer node ids with a route. */
  peers(): string[] {
    return [...this.#routes.keys()];
  }

  /** Every route. */
  values(): IterableIterator<BusLink> {
    return this.#routes.values();
  }

  /** The sessions of every route (rendezvous and relays for traversal). */
  sessions(): PeerSession[] {
    return [...this.#routes.values()].map((l) => l.session);
  }

  /**
   * A new route: kept (true) or refused (false, its session closed). A route to this node itself
   * is refused; of two to the same peer, the rule above keeps one and closes the other.
   */
  admit(link: BusLink): boolean {
    const s = link.session;
    const peer = s.peer.nodeId;
    if (peer === this.h.nodeId) {
      void s.conn.close(DUPLICATE_ROUTE, "a node does not route to itself");
      return false;
    }
    const old = this.#routes.get(peer);
    if (old) {
      // Not who opened the route channel: on a session both sides use, both may open one.
      const dialerOf = (l: BusLink) => (l.session.conn.isClient ? this.h.nodeId : peer);
      const relayed = (l: BusLink) => this.h.relayed(l.session);
      const keepNew = relayed(old) !== relayed(link)
        ? relayed(old)
        : dialerOf(link) < dialerOf(old);
      if (keepNew) link.seed ||= old.seed;
      else old.seed ||= link.seed;
      const loser = keepNew ? old.session : s;
      void loser.conn.close(DUPLICATE_ROUTE, "duplicate route");
      if (!keepNew) return false;
      this.h.replace(old);
    }
    this.#routes.set(peer, link);
    return true;
  }

  /** `link` left the bus: true when it was the route to its peer (now gone). */
  remove(link: BusLink): boolean {
    const peer = link.session.peer.nodeId;
    if (this.#routes.get(peer) !== link) return false;
    this.#routes.delete(peer);
    if (this.#routes.size === 0) {
      const w = this.#emptied;
      this.#emptied = [];
      for (const f of w) f();
    }
    return true;
  }

  /** Resolves once the node has no route at all (at once when it has none now). */
  whenEmpty(): Promise<void> {
    if (this.#routes.size === 0) return Promise.resolve();
    return new Promise((r) => this.#emptied.push(r));
  }
}
