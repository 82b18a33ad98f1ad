/**
 * Hold-downs: a client certificate whose session this node closed for misbehaving (a protocol
 * violation, too many refused operations or requests) is refused new sessions for a while,
 * doubling with each repeat. Without it, a client that is closed reconnects at once and gets a
 * fresh set of budgets: a caller that never reads its replies had providers answer a thousand
 * calls per session, in a loop, and the providers' answers crowded out every other client of the
 * node (docs/security.md, "Hold-downs"). Keyed by the certificate's node id: the private key is
 * what a client cannot change by reconnecting, while addresses are shared behind NATs and change.
 *
 * Sans-IO: the caller passes the time (monotonic ms).
 */

/** The hold-down's bounds, each with its reason. */
export const HOLD_DOWN = {
  /** The first closing costs a second: a client with a rare bug reconnects almost at once. */
  firstMs: 1000,
  /** Doubling stops at a minute: long enough to make a loop cheap, short enough to recover. */
  maxMs: 60_000,
  /** Ten minutes without closing forgets the past: an old strike does not double a new one. */
  forgetMs: 600_000,
  /** Identities remembered: bounded, so a realm of many misbehaving clients costs kilobytes. */
  maxIdentities: 4096,
} as const;

interface Held {
  until: number;
  strikes: number;
  why: string;
}

/** What a node's hold-downs did (`inspect`: `refused.heldDown`). */
export interface HoldDownStats {
  /** Identities held down now. */
  held: number;
  /** Times a session was closed and its identity held down. */
  strikes: number;
  /** Sessions refused because their identity was held down. */
  refused: number;
}

export class HoldDowns {
  readonly #held = new Map<string, Held>();
  #strikes = 0;
  #refused = 0;

  /** `id`'s session was closed for `why` at `now`: it is held down, longer for each repeat. */
  strike(id: string, why: string, now: number): void {
    const old = this.#held.get(id);
    const strikes = old && now - old.until < HOLD_DOWN.forgetMs ? old.strikes + 1 : 1;
    const ms = Math.min(HOLD_DOWN.maxMs, HOLD_DOWN.firstMs * 2 ** (strikes - 1));
    this.#held.delete(id); // re-inserted last: the map's order is the order of striking
    this.#held.set(id, { until: now + ms, strikes, why });
    this.#strikes++;
    if (this.#held.size > HOLD_DOWN.maxIdentities) this.#prune(now);
  }

  /** Null when `id` may open a session at `now`, else why not (for the refusal's reason). */
  check(id: string, now: number): string | null {
    const h = this.#held.get(id);
    if (!h || now >= h.until) return null;
    this.#refused++;
    const s = Math.ceil((h.until - now) / 1000);
    return `held down for ${s} s more: a session of this certificate was closed for misbehaving (${h.why})`;
  }

  stats(now: number): HoldDownStats {
    let held = 0;
    for (const h of this.#held.values()) if (now < h.until) held++;
    return { held, strikes: this.#strikes, refused: this.#refused };
  }

  /** Forgets what expired long ago, then the oldest strikes while over the bound. */
  #prune(now: number): void {
    for (const [id, h] of this.#held) {
      if (now - h.until >= HOLD_DOWN.forgetMs) this.#held.delete(id);
    }
    for (const id of this.#held.keys()) {
      if (this.#held.size <= HOLD_DOWN.maxIdentities) break;
      this.#held.delete(id);
    }
  }
}
