/**
 * Reaching a node by id, whatever is in between (docs/nat-traversal.md):
 *
 * 1. an open session to it (path `direct`, or `punched` if it was made by punching);
 * 2. a direct dial to the address membership knows (`direct`);
 * 3. hole punching through a rendezvous node both have a session with: the rendezvous tells each
 *    side the other's address as it sees it, both send probes, one dials (`punched`); if that
 *    fails, the target dials back the same way (a symmetric NAT reaches a full cone only so);
 * 4. else the rendezvous relays (`relayed`): requests for the target go through it.
 *
 * The requests between nodes: `nat.introduce` and `nat.dialback` (to the rendezvous),
 * `nat.punch` and `nat.dial` (from it, to the target), `relay.ping` (through it), `ping`.
 */
import { punchConnect, PunchError, sendProbes } from "../nat/punch.ts";
import type { PeerSession } from "../peer/session.ts";
import type { QuicEndpoint } from "../quic/mod.ts";

/** How a node is reached. */
export type PathKind = "direct" | "punched" | "relayed";

/** One attempt to reach and ping a node. */
export interface ReachResult {
  target: string;
  path: PathKind;
  rttMs: number;
  /** From the start of the attempt to the ping's answer: the time to a first byte. */
  elapsedMs: number;
  /** The rendezvous or relay node, when one was used. */
  via?: string;
  /** What was tried before, in order (failures included). */
  tried: string[];
}

/** What the traversal needs from the node. */
export interface TraversalHost {
  nodeId: string;
  endpoint: QuicEndpoint;
  /** An open session to `nodeId`, if any. */
  sessionTo(nodeId: string): PeerSession | undefined;
  /** Sessions to other nodes that can act as rendezvous. */
  rendezvous(): PeerSession[];
  /** The address membership knows for `nodeId`. */
  addressOf(nodeId: string): string | undefined;
  /** Dials an address, tracked like every session. */
  dial(addr: string, timeoutMs: number): Promise<PeerSession>;
  /** Makes a session on an established connection (dialer side), tracked. */
  adopt(conn: Awaited<ReturnType<QuicEndpoint["connect"]>>): Promise<PeerSession>;
}

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const dec = <T>(b: Uint8Array) => JSON.parse(new TextDecoder().decode(b)) as T;
const hostPort = (s: PeerSession) => ({ host: s.conn.remote.host, port: s.conn.remote.port });

/** The traversal logic of one node. */
export class Traversal {
  /** Sessions made by punching. */
  readonly punched = new WeakSet<PeerSession>();
  readonly stats = {
    introductions: 0,
    punchRequests: 0,
    punchedOk: 0,
    punchFailed: 0,
    dialbacks: 0,
    relayed: 0,
  };
  /** Peers told to punch towards us, until when: their session, if it comes, is punched. */
  readonly #expected = new Map<string, number>();

  constructor(private readonly h: TraversalHost) {}

  /** Handles the traversal requests; undefined when `method` is not one of them. */
  handle(method: string, payload: Uint8Array, s: PeerSession): Promise<Uint8Array> | undefined {
    switch (method) {
      case "ping":
        return Promise.resolve(enc({ node: this.h.nodeId }));
      case "nat.observed":
        return Promise.resolve(enc(hostPort(s)));
      case "nat.introduce":
        return this.#introduce(dec<{ target: string }>(payload).target, s);
      case "nat.punch": {
        const p = dec<{ peer: string; host: string; port: number }>(payload);
        this.stats.punchRequests++;
        this.#expected.set(p.peer, performance.now() + 15_000);
        // Probes now and twice more, to overlap with the other side's handshake attempts.
        sendProbes(this.h.endpoint, p.host, p.port);
        for (const t of [300, 800]) {
          setTimeout(() => {
            try {
              sendProbes(this.h.endpoint, p.host, p.port);
            } catch {
              // the endpoint closed meanwhile
            }
          }, t);
        }
        return Promise.resolve(enc({ ok: true }));
      }
      case "relay.ping":
        return this.#relayPing(dec<{ target: string }>(payload).target);
      case "nat.dialback":
        return this.#dialback(dec<{ target: string }>(payload).target, s);
      case "nat.dial":
        return this.#dial(dec<{ peer: string; host: string; port: number }>(payload));
      default:
        return undefined;
    }
  }

  /** At the rendezvous: introduce the requester to `target`; answers with the target's address. */
  async #introduce(target: string, requester: PeerSession): Promise<Uint8Array> {
    const t = this.h.sessionTo(target);
    if (!t) throw new Error(`no session to ${target} here`);
    this.stats.introductions++;
    await t.request(
      "nat.punch",
      enc({ peer: requester.peer.nodeId, ...hostPort(requester) }),
      { timeoutMs: 2000 },
    );
    return enc(hostPort(t));
  }

  /**
   * At the rendezvous: the asker's punch failed; have the target dial the asker instead (a
   * symmetric NAT's new port reaches a peer that accepts anyone, but not the other way round).
   */
  async #dialback(target: string, requester: PeerSession): Promise<Uint8Array> {
    const t = this.h.sessionTo(target);
    if (!t) throw new Error(`no session to ${target} here`);
    return await t.request(
      "nat.dial",
      enc({ peer: requester.peer.nodeId, ...hostPort(requester) }),
      { timeoutMs: 9000 },
    );
  }

  /** At the target: dial the asker's public address (probes first), as told by the rendezvous. */
  async #dial(p: { peer: string; host: string; port: number }): Promise<Uint8Array> {
    this.stats.dialbacks++;
    const conn = await punchConnect(this.h.endpoint, p.host, p.port);
    const s = await this.h.adopt(conn);
    if (s.peer.nodeId !== p.peer) {
      void s.close("not the node we were asked to dial");
      throw new Error(`${p.host}:${p.port} is ${s.peer.nodeId}, not ${p.peer}`);
    }
    this.punched.add(s);
    return enc({ ok: true });
  }

  /** Every new session: one a peer punched towards us after an introduction is `punched`. */
  sessionOpened(s: PeerSession): void {
    const until = this.#expected.get(s.peer.nodeId);
    if (until === undefined) return;
    this.#expected.delete(s.peer.nodeId);
    if (performance.now() <= until) this.punched.add(s);
  }

  async #relayPing(target: string): Promise<Uint8Array> {
    const t = this.h.sessionTo(target);
    if (!t) throw new Error(`no session to ${target} here`);
    this.stats.relayed++;
    return await t.request("ping", new Uint8Array(0), { timeoutMs: 2000 });
  }

  /** Reaches `target` the best way available and pings it once. */
  async reach(target: string, o: { relayOnly?: boolean } = {}): Promise<ReachResult> {
    const tried: string[] = [];
    const started = performance.now();
    const ping = async (s: PeerSession, path: PathKind, via?: string): Promise<ReachResult> => {
      const t0 = performance.now();
      await s.request("ping", new Uint8Array(0), { timeoutMs: 2000 });
      const now = performance.now();
      return {
        target,
        path,
        rttMs: round(now - t0),
        elapsedMs: round(now - started),
        ...(via ? { via } : {}),
        tried,
      };
    };
    if (!o.relayOnly) {
      const open = this.h.sessionTo(target);
      if (open) return await ping(open, this.punched.has(open) ? "punched" : "direct");
      const addr = this.h.addressOf(target);
      if (addr) {
        try {
          const s = await this.h.dial(addr, 1500);
          if (s.peer.nodeId !== target) throw new Error(`${addr} is ${s.peer.nodeId}`);
          return await ping(s, "direct");
        } catch (e) {
          tried.push(`direct ${addr}: ${(e as Error).message}`);
        }
      }
    }
    for (const r of this.h.rendezvous().slice(0, 3)) {
      const via = r.peer.nodeId;
      if (via === target) continue;
      if (!o.relayOnly) {
        try {
          const addr = dec<{ host: string; port: number }>(
            await r.request("nat.introduce", enc({ target }), { timeoutMs: 3000 }),
          );
          const conn = await punchConnect(this.h.endpoint, addr.host, addr.port);
          const s = await this.h.adopt(conn);
          if (s.peer.nodeId !== target) {
            void s.close("not the node we punched for");
            throw new Error(`${addr.host}:${addr.port} is ${s.peer.nodeId}`);
          }
          this.punched.add(s);
          this.stats.punchedOk++;
          return await ping(s, "punched", via);
        } catch (e) {
          if (e instanceof PunchError) this.stats.punchFailed++;
          tried.push(`punch via ${via.slice(0, 12)}…: ${(e as Error).message}`);
        }
        try {
          this.#expected.set(target, performance.now() + 15_000);
          await r.request("nat.dialback", enc({ target }), { timeoutMs: 10_000 });
          const s = this.h.sessionTo(target);
          if (!s) throw new Error("it dialed, but no session arrived");
          this.punched.add(s);
          this.stats.punchedOk++;
          return await ping(s, "punched", via);
        } catch (e) {
          tried.push(`dial back via ${via.slice(0, 12)}…: ${(e as Error).message}`);
        }
      }
      try {
        const t0 = performance.now();
        await r.request("relay.ping", enc({ target }), { timeoutMs: 3000 });
        const now = performance.now();
        return {
          target,
          path: "relayed",
          rttMs: round(now - t0),
          elapsedMs: round(now - started),
          via,
          tried,
        };
      } catch (e) {
        tried.push(`relay via ${via.slice(0, 12)}…: ${(e as Error).message}`);
      }
    }
    throw new Error(`cannot reach ${target}: ${tried.join("; ") || "no rendezvous node"}`);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
