/**
 * Seeds (`join`): the way into the mesh. A route to each configured seed is dialed (with
 * jittered exponential backoff until one answers). Once the node has other routes, the overlay
 * may close a seed's route like any other (lib/node/overlay.ts): seeds do not become hubs. A
 * seed is dialed again only when the node has no route left. When a duplicate route replaced
 * ours, the loop waits for the kept one to go first.
 */
import { formatUrl, type PeerSession } from "../peer/mod.ts";
import { Backoff, backoffDelay, type Log, Sleeper } from "../util/mod.ts";
import { RUNTIME } from "./defaults.ts";
import type { RouteTable } from "./routes.ts";

/** What the seed loops need from the node. */
export interface SeedHost {
  readonly routes: RouteTable;
  stopping(): boolean;
  /** Dials `seed` and makes a session there (tracked like every session). */
  dial(seed: { host: string; port: number }): Promise<PeerSession>;
  /** Opens a route (marked as a seed's) on a session to a seed. */
  route(s: PeerSession): Promise<unknown>;
  readonly log: Log;
}

/** The dial loops of a node's seeds. */
export class Seeds {
  readonly #loops: Promise<void>[] = [];
  readonly #sleeper = new Sleeper();
  #stop!: () => void;
  readonly #stopped = new Promise<void>((r) => (this.#stop = r));

  constructor(private readonly h: SeedHost, seeds: readonly { host: string; port: number }[]) {
    for (const seed of seeds) this.#loops.push(this.#loop(seed));
  }

  /** Ends every loop (a sleeping one at once); resolves when they have returned. */
  async stop(): Promise<void> {
    this.#stop();
    this.#sleeper.wakeAll();
    await Promise.allSettled(this.#loops);
  }

  /** Wakes the sleeping loops now (the node is stopping). */
  wake(): void {
    this.#stop();
    this.#sleeper.wakeAll();
  }

  /** Keeps a route to one seed for as long as the node runs. */
  async #loop(seed: { host: string; port: number }): Promise<void> {
    const where = formatUrl(seed.host, seed.port);
    const backoff = new Backoff(Math.random, RUNTIME.seedBackoff);
    while (!this.h.stopping()) {
      let s: PeerSession;
      // A seed that does not answer is said within seconds, not when the handshake gives up.
      const silent = setTimeout(() => {
        this.h.log.warn(
          "seed.silent",
          `join ${where}: no answer after ${RUNTIME.seedSilentMs} ms, still trying (is a node listening there, and does UDP reach it?)`,
          { seed: where, cause: "silent" },
        );
      }, RUNTIME.seedSilentMs);
      try {
        s = await this.h.dial(seed);
      } catch (e) {
        clearTimeout(silent);
        if (this.h.stopping()) return;
        const wait = backoff.next();
        this.h.log.warn(
          "seed.failed",
          `join ${where}: ${(e as Error).message}; retrying in ${wait} ms`,
          { seed: where, cause: (e as Error).message },
        );
        await this.#sleeper.sleep(wait);
        continue;
      }
      clearTimeout(silent);
      backoff.reset();
      await this.h.route(s);
      await s.closed;
      // A duplicate route closed this one: wait for the kept route to go before redialing.
      for (let kept = this.h.routes.get(s.peer.nodeId); kept && !this.h.stopping();) {
        await kept.session.closed;
        kept = this.h.routes.get(s.peer.nodeId);
      }
      if (this.h.stopping()) return;
      // Joined: the mesh is reached through other routes; the seed again only when none is left.
      await Promise.race([this.h.routes.whenEmpty(), this.#stopped]);
      if (this.h.stopping()) return;
      await this.#sleeper.sleep(
        backoffDelay(0, Math.random, { baseMs: RUNTIME.seedBackoff.baseMs }),
      );
    }
  }
}
