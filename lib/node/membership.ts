/**
 * Membership on real nodes: the sans-IO `Membership` core driven by a timer and QUIC.
 *
 * - Small messages (ping, ack, nack, ping-req, gossip) travel as QUIC DATAGRAMs: unreliable like
 *   the UDP memberlist uses, and inside mutual TLS. Full-state syncs (and anything larger than a
 *   datagram) travel as a one-way request on a stream of the same session.
 * - A message names its sender's node id, which must be the id the session's certificate proved
 *   (else it is dropped and counted as forged), and the address to answer at.
 * - Sessions used for membership are pooled by address, at most `maxSessions` (least recently
 *   used closed first; routes and clients are never closed by the pool), so a node's connection
 *   count stays bounded whatever the mesh size. docs/membership.md, "On real nodes".
 */
import {
  decodeMembership,
  Directory,
  encodeMembership,
  type MemberEvent,
  type MemberMeta,
  Membership,
  type MembershipConfig,
  type MemberView,
  type Msg,
  type Output,
} from "../mesh/mod.ts";
import { ask, defineRequest, type PeerSession, type RequestRegistry } from "../peer/mod.ts";
import { Driver, monoNow, withTimeout } from "../util/mod.ts";
import { RUNTIME } from "./defaults.ts";
import { NodeError } from "./errors.ts";

/** A membership message on a stream of a session (syncs, and what a datagram cannot hold). */
export const MEMBERSHIP_MSG = defineRequest<Uint8Array, Uint8Array>(
  "membership.msg",
  "bytes",
  "bytes",
);

/** Counters of the glue. */
export interface MembershipGlueStats {
  datagramsIn: number;
  datagramsOut: number;
  streamsIn: number;
  streamsOut: number;
  /** Messages that did not decode. */
  malformed: number;
  /** Messages whose sender id was not the session's certificate. */
  forged: number;
  /** Sends dropped: no session could be had, or the datagram queue was full. */
  unsent: number;
  sessionsClosedByPool: number;
}

export interface MembershipGlueOptions {
  id: string;
  /** Where others reach this node (`quic://host:port`). */
  addr: string;
  meta: MemberMeta;
  seeds: string[];
  config?: Partial<MembershipConfig>;
  /** Opens a session to a node's address (the node runtime dials and tracks it). */
  dial: (addr: string) => Promise<PeerSession>;
  /** Sessions the pool must not close (routes, clients). */
  isPinned: (s: PeerSession) => boolean;
  onEvent?: (e: MemberEvent, view: { id: string; addr: string }) => void;
  /** Sessions kept for membership traffic (default 64). */
  maxSessions?: number;
  /** Where a failure inside the glue is reported. */
  log?: (line: string) => void;
}

/** The membership of one running node. */
export class MembershipGlue {
  readonly dir = new Directory();
  readonly core: Membership;
  readonly stats: MembershipGlueStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    streamsIn: 0,
    streamsOut: 0,
    malformed: 0,
    forged: 0,
    unsent: 0,
    sessionsClosedByPool: 0,
  };
  /** Sessions by the address their peer answers at; Map order = least recently used first. */
  readonly #byAddr = new Map<string, PeerSession>();
  readonly #dialing = new Map<string, Promise<PeerSession | null>>();
  readonly #driver: Driver<Output<Msg, MemberEvent>>;
  #stopped = false;
  /** When a message last came from each member (by node id), for inspection. */
  readonly #lastSeen = new Map<string, number>();

  constructor(private readonly o: MembershipGlueOptions) {
    this.core = new Membership({
      id: o.id,
      addr: o.addr,
      meta: o.meta,
      rng: Math.random,
      directory: this.dir,
      config: o.config,
      seeds: o.seeds,
      now: monoNow(),
    });
    this.#driver = new Driver(this.core, {
      act: (out) => this.#act(out),
      onError: (e) => o.log?.(`membership: ${(e as Error).message}`),
    });
    this.#driver.poke();
  }

  /** Serves membership messages that come on streams. */
  register(r: RequestRegistry): void {
    r.on(MEMBERSHIP_MSG, (payload, s) => this.onStream(s, payload));
  }

  /** A session opened (either way): its datagrams feed the core. */
  attach(s: PeerSession): void {
    void (async () => {
      for await (const d of s.conn.datagrams()) {
        this.stats.datagramsIn++;
        this.#receive(s, d);
      }
    })().catch(() => {});
    void s.closed.then(() => {
      for (const [addr, x] of this.#byAddr) if (x === s) this.#byAddr.delete(addr);
    });
  }

  /** A membership message that came on a stream (`membership.msg`). */
  onStream(s: PeerSession, payload: Uint8Array): Uint8Array {
    this.stats.streamsIn++;
    this.#receive(s, payload);
    return new Uint8Array(0);
  }

  /** What this node knows of the members, for `macula inspect members`. */
  members(): (MemberView & { self: boolean; sinceMs: number; lastSeenMs: number | null })[] {
    const now = monoNow();
    return this.core.members().map((m) => {
      const seen = this.#lastSeen.get(m.id);
      return {
        ...m,
        self: m.id === this.o.id,
        sinceMs: Math.round(now - m.since),
        lastSeenMs: m.id === this.o.id ? 0 : seen === undefined ? null : Math.round(now - seen),
      };
    });
  }

  /** Leaves (gossips `left`), then stops the timer. */
  leave(): void {
    if (this.#stopped) return;
    this.core.leave(monoNow());
    this.#driver.flush();
    this.#stopped = true;
    this.#driver.stop();
  }

  #receive(s: PeerSession, bytes: Uint8Array): void {
    if (this.#stopped) return;
    let d;
    try {
      d = decodeMembership(bytes, this.dir);
    } catch {
      this.stats.malformed++;
      return;
    }
    if (d.fromId !== s.peer.nodeId) {
      this.stats.forged++;
      return;
    }
    const now = monoNow();
    this.#lastSeen.set(d.fromId, now);
    // Answers go back on this session.
    this.#byAddr.delete(d.fromAddr);
    this.#byAddr.set(d.fromAddr, s);
    this.core.receive(now, d.fromAddr, d.msg);
    this.#driver.poke();
  }

  /** Sends what the core queued and reports its events. */
  #act(out: Output<Msg, MemberEvent>): void {
    for (const o of out.send) this.#send(o.to, o.msg);
    if (this.o.onEvent) {
      for (const e of out.events) {
        const entry = this.dir.entries[e.member]!;
        this.o.onEvent(e, { id: entry.id, addr: entry.addr });
      }
    }
  }

  #send(to: string, msg: Msg): void {
    const bytes = encodeMembership(msg, this.dir, this.o.addr);
    const big = msg.t === "sync" || msg.t === "sync-reply";
    void this.#session(to).then((s) => {
      if (!s || s.conn.closeInfo || !s.conn.isOpen) {
        this.stats.unsent++;
        return;
      }
      try {
        if (!big && bytes.length <= s.conn.maxDatagramSize && s.conn.sendDatagram(bytes)) {
          this.stats.datagramsOut++;
          return;
        }
      } catch {
        this.stats.unsent++; // closing meanwhile
        return;
      }
      this.stats.streamsOut++;
      ask(s, MEMBERSHIP_MSG, bytes, { timeoutMs: 10_000 }).catch(() => {
        this.stats.unsent++;
      });
    });
  }

  /** A session to `addr`: pooled, or dialed (once, however many sends wait for it). */
  #session(addr: string): Promise<PeerSession | null> {
    const have = this.#byAddr.get(addr);
    if (have && have.conn.isOpen && !have.closing) {
      this.#byAddr.delete(addr);
      this.#byAddr.set(addr, have);
      return Promise.resolve(have);
    }
    const pending = this.#dialing.get(addr);
    if (pending) return pending;
    // Bounded: a dial that hangs (no answer: QUIC gets no refusal) must not hold every later
    // message to that address; the next send dials afresh.
    const dial = withTimeout(
      this.o.dial(addr),
      RUNTIME.dialTimeoutMs,
      () => new NodeError("dial timed out"),
    );
    const p = dial.then(
      (s) => {
        this.#dialing.delete(addr);
        this.#byAddr.set(addr, s);
        this.#trim();
        return s;
      },
      () => {
        this.#dialing.delete(addr);
        return null;
      },
    );
    this.#dialing.set(addr, p);
    return p;
  }

  /** Closes the least recently used unpinned sessions past the bound. */
  #trim(): void {
    const max = this.o.maxSessions ?? 64;
    if (this.#byAddr.size <= max) return;
    for (const [addr, s] of this.#byAddr) {
      if (this.#byAddr.size <= max) break;
      if (this.o.isPinned(s)) continue;
      this.#byAddr.delete(addr);
      this.stats.sessionsClosedByPool++;
      void s.close("membership pool full");
    }
  }
}
