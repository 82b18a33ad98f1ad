/**
 * Reaching a node by id, whatever is in between (docs/nat-traversal.md):
 *
 * 1. an open session to it (path `direct`, `punched` or `relayed`, however it was made);
 * 2. a direct dial to the address membership knows (`direct`);
 * 3. hole punching through a rendezvous node both have a session with: the rendezvous tells each
 *    side the other's address as it sees it, both send probes, one dials (`punched`); if that
 *    fails, the target dials back the same way (a symmetric NAT reaches a full cone only so);
 * 4. else a relayed session through the rendezvous (`relayed`): a QUIC connection of our own with
 *    the target, mutual TLS end to end, whose packets the relay forwards (lib/nat/relay.ts). It
 *    is a session like any other (routes, membership, requests), and keeps trying to move to a
 *    direct path: when punching works later, the same connection migrates (QUIC path migration),
 *    keeping its streams, routes and order.
 *
 * Requests between nodes (lib/nat/requests.ts): `nat.introduce` and `nat.dialback` (to the
 * rendezvous), `nat.punch` and `nat.dial` (from it, to the target), `nat.punched` (the dialer of a
 * punched session tells the other side), `nat.upgrade` (asks the dialer of a relayed session to
 * move it), `relay.open` (to the relay), `relay.accept` (from it, to the target), `ping`.
 */
import { punchConnect, PunchError, sendProbes } from "./punch.ts";
import { type RelayServer, RelayTunnels } from "./relay.ts";
import { TraversalError } from "./errors.ts";
import {
  NAT_DIAL,
  NAT_DIALBACK,
  NAT_INTRODUCE,
  NAT_OBSERVED,
  NAT_PUNCH,
  NAT_PUNCHED,
  NAT_REACHABLE,
  NAT_UPGRADE,
  PING,
  RELAY_ACCEPT,
  RELAY_OPEN,
} from "./requests.ts";
import { ask, parseUrl, type PeerSession, type RequestRegistry } from "../peer/mod.ts";
import type { HostPort, QuicConnection, QuicEndpoint } from "../quic/mod.ts";
import { type Log, monoNow, RateLimiter, withTimeout } from "../util/mod.ts";

/** How a node is reached. */
export type PathKind = "direct" | "punched" | "relayed";

/** A session to a node and how it was reached. */
export interface Reached {
  session: PeerSession;
  path: PathKind;
  /** The rendezvous or relay node, when one was used. */
  via?: string;
  /** From the start of the attempt until the session was there. */
  elapsedMs: number;
  /** What was tried before, in order (failures included). */
  tried: string[];
}

/** One attempt to reach and ping a node. */
export interface ReachResult {
  target: string;
  path: PathKind;
  rttMs: number;
  /** From the start of the attempt to the ping's answer: the time to a first byte. */
  elapsedMs: number;
  via?: string;
  tried: string[];
}

/** What the traversal needs from the node. */
export interface TraversalHost {
  nodeId: string;
  endpoint: QuicEndpoint;
  /** Every session of the node (open or closing). */
  sessions(): Iterable<PeerSession>;
  /** Sessions to other nodes that can act as rendezvous or relay (routes). */
  rendezvous(): PeerSession[];
  /** The address membership knows for `nodeId`. */
  addressOf(nodeId: string): string | undefined;
  /**
   * Whether membership knows `nodeId` (any state): punches and dial-backs are only for members.
   * `via` is the node session the request came on: a member it introduces that this node has
   * not heard of yet (gossip may lag the introduction by seconds) is learned from it, bounded.
   */
  isMember(nodeId: string, via: PeerSession): Promise<boolean>;
  /** Dials an address, tracked like every session. */
  dial(addr: string, timeoutMs: number): Promise<PeerSession>;
  /** Makes a session on an established connection (dialer side), tracked. */
  adopt(conn: Awaited<ReturnType<QuicEndpoint["connect"]>>): Promise<PeerSession>;
  /** The relay role, or null when this node does not relay. */
  relay: RelayServer | null;
  /** First attempt to move a relayed session to a direct path after this long (then doubling). */
  upgradeAfterMs: number;
  /** Where traversal says what it does (lib/observe/log.ts). */
  readonly log: Log;
}

/** How long a direct dial runs alone before the traversal through a rendezvous joins it. */
const DIRECT_HEAD_START_MS = 250;
/** A reachability check's dial-back: its deadline, and how many peers are asked. */
const REACH_DIAL_MS = 3000;
const REACH_ASK = 3;
/** Dial-backs this node makes for others at once (more are refused: the asker tries later). */
const REACH_AT_ONCE = 8;
/** Tunnels one relay may have announced here whose session has not come yet. */
const MAX_WAITING_TUNNELS = 64;

const hostPort = (s: PeerSession) => ({ host: s.conn.remote.host, port: s.conn.remote.port });
const short = (id: string) => `${id.slice(0, 12)}…`;
const live = (s: PeerSession) => s.conn.isOpen && !s.closing;

/** The traversal logic of one node. */
export class Traversal {
  /** Sessions made by punching (or moved from a relay to a punched path). */
  readonly punched = new WeakSet<PeerSession>();
  readonly #movedSessions = new WeakSet<PeerSession>();
  /** Relayed sessions, with the relay node's id. */
  readonly #relayedVia = new WeakMap<PeerSession, string>();
  /** This node's ends of relayed sessions. */
  readonly tunnels: RelayTunnels;
  readonly stats = {
    introductions: 0,
    punchRequests: 0,
    punchedOk: 0,
    punchFailed: 0,
    dialbacks: 0,
    /** Reachability checks: this node dialed a peer back at its address, and how that went. */
    reachChecks: { reached: 0, unreached: 0 },
    relayedSessions: 0,
    upgraded: 0,
    upgradeFailed: 0,
    /** Relayed packets for neither this node's relay nor its tunnels (stale or forged tokens). */
    relayPacketsUnknown: 0,
    /**
     * Punch, dial-back and introduction requests refused: for a node that is no member, or past
     * the rate per requester or per address (no request turns this node into a reflector).
     */
    refused: 0,
  };
  /**
   * Traversal requests per requesting node: 64 at once, then 8 a second. Generous, because a
   * rendezvous legitimately asks on behalf of every node it introduces (a join storm sends it
   * many at once); what protects an address is the bound per address below.
   */
  readonly #perRequester = new RateLimiter<string>({ perSecond: 8, burst: 64, maxKeys: 4096 });
  /** Probes and dials toward one address, from all requesters: 4 at once, then one in 2 s. */
  readonly #perAddress = new RateLimiter<string>({ perSecond: 0.5, burst: 4, maxKeys: 4096 });
  /** Dial-backs for reachability checks under way (at most `REACH_AT_ONCE`). */
  #reaching = 0;
  /** Tunnel port → the peer whose relayed session comes (or goes) through it, and the relay. */
  readonly #tunnelPeers = new Map<number, { peer: string; via: string }>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Relay node id → tunnels it announced whose session has not come yet. */
  readonly #waiting = new Map<string, number>();
  /** Relayed sessions with an upgrade in flight (one at a time). */
  readonly #upgrading = new WeakSet<PeerSession>();
  /** How each peer was last reached, and when (bounded: the oldest is forgotten). */
  readonly #learned = new Map<string, { path: PathKind; at: number }>();
  #stopped = false;

  constructor(private readonly h: TraversalHost) {
    this.tunnels = new RelayTunnels(h.endpoint);
  }

  /** How `s` reaches its peer now. */
  pathOf(s: PeerSession): PathKind {
    if (this.tunnels.has(s.conn.remote)) return "relayed";
    return this.punched.has(s) ? "punched" : "direct";
  }

  /** The relay of a relayed session. */
  viaOf(s: PeerSession): string | undefined {
    return this.pathOf(s) === "relayed" ? this.#relayedVia.get(s) : undefined;
  }

  /** Stops the upgrade timers. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  /** An open session to `nodeId`: one that is not relayed first, unless `relayed` is asked. */
  #sessionTo(nodeId: string, o: { direct?: boolean; relayed?: boolean } = {}) {
    let relayed: PeerSession | undefined;
    for (const s of this.h.sessions()) {
      if (s.peer.nodeId !== nodeId || !live(s)) continue;
      const r = this.pathOf(s) === "relayed";
      if (r === (o.relayed === true)) return s;
      if (r) relayed ??= s;
    }
    return o.direct || o.relayed ? undefined : relayed;
  }

  /** An open session to `nodeId` (not relayed, if there is such a one). */
  openSessionTo(nodeId: string): PeerSession | undefined {
    return this.#sessionTo(nodeId);
  }

  /**
   * Registers the traversal requests this node answers (as rendezvous, relay and target). A
   * malformed payload is answered with an error naming the method and the field.
   */
  register(r: RequestRegistry): void {
    r.on(PING, () => ({ node: this.h.nodeId }));
    r.on(NAT_OBSERVED, (_, s) => hostPort(s));
    r.on(NAT_INTRODUCE, async (q, s) => {
      await this.#admit(s, q.target, null);
      return this.#introduce(q.target, s);
    });
    r.on(NAT_PUNCH, async (p, s) => {
      await this.#admit(s, p.peer, `${p.host}:${p.port}`);
      this.stats.punchRequests++;
      // Probes now and twice more, to overlap with the other side's handshake attempts.
      sendProbes(this.h.endpoint, p.host, p.port);
      for (const t of [300, 800]) {
        this.#later(t, () => {
          try {
            sendProbes(this.h.endpoint, p.host, p.port);
          } catch {
            // the endpoint closed meanwhile
          }
        });
      }
      return { ok: true };
    });
    r.on(NAT_PUNCHED, (_, s) => {
      // The peer made this session by punching (we accepted it): say so in our paths too.
      if (this.pathOf(s) !== "relayed") this.punched.add(s);
      return { ok: true };
    });
    r.on(NAT_DIALBACK, async (q, s) => {
      await this.#admit(s, q.target, null);
      return this.#dialback(q.target, s);
    });
    r.on(NAT_REACHABLE, async (_, s) => {
      const addr = this.h.addressOf(s.peer.nodeId);
      let toward: string | null = null;
      try {
        if (addr !== undefined) {
          const u = parseUrl(addr, "member address");
          toward = `${u.host}:${u.port}`;
        }
      } catch { /* refused below */ }
      await this.#admit(s, s.peer.nodeId, toward); // the same budget per address as punches
      if (addr === undefined || toward === null) {
        this.stats.refused++;
        throw new TraversalError("no address of yours is known here (not an alive member)");
      }
      // A join storm must not make this node run hundreds of handshakes at once.
      if (this.#reaching >= REACH_AT_ONCE) {
        this.stats.refused++;
        throw new TraversalError(`busy: ${REACH_AT_ONCE} dial-backs under way here, ask later`);
      }
      this.#reaching++;
      try {
        return { ok: await this.#reaches(addr, s.peer.nodeId) };
      } finally {
        this.#reaching--;
      }
    });
    r.on(NAT_DIAL, async (p, s) => {
      await this.#admit(s, p.peer, `${p.host}:${p.port}`);
      return this.#dial(p);
    });
    r.on(RELAY_OPEN, (q, s) => this.#relayOpen(q.target, s));
    r.on(RELAY_ACCEPT, (q, s) => this.#relayAccept(q, s));
    r.on(NAT_UPGRADE, async (_, s) => {
      // The peer of a relayed session we dialed asks us to move it (only the dialer can).
      if (this.pathOf(s) !== "relayed" || !s.conn.isClient) return {};
      return { via: await this.#upgrade(s, s.peer.nodeId) };
    });
  }

  /**
   * Refuses a traversal request (a `TraversalError` the requester sees, counted) unless it is
   * about a member of the realm, and within the rate of its requester and of the address it
   * would make this node send to. The requests come from nodes only (lib/peer access). A member
   * the requester introduces before gossip brought it here is first learned from the requester
   * (bounded by the node, lib/node/membership.ts `learn`): a target hears of a new node from its rendezvous first.
   */
  async #admit(requester: PeerSession, about: string, toward: string | null): Promise<void> {
    let why: string | null = null;
    // The requester's rate first: each request about a member not known yet costs a sync.
    if (!this.#perRequester.take(requester.peer.nodeId, 1, monoNow())) {
      why = "too many traversal requests from this node (64, then 8 a second)";
    } else if (!(await this.h.isMember(about, requester))) {
      why = `${short(about)} is not a member of the realm here`;
    } else if (toward !== null && !this.#perAddress.take(toward, 1, monoNow())) {
      why = `too many punches toward ${toward} (4, then one every 2 s)`;
    }
    if (why === null) return;
    this.stats.refused++;
    throw new TraversalError(why);
  }

  #later(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  /** A session the rendezvous or relay can use to `target`: never a relayed one. */
  #directTo(target: string): PeerSession {
    const t = this.#sessionTo(target, { direct: true });
    if (!t) throw new TraversalError(`no direct session to ${short(target)} here`);
    return t;
  }

  /** At the rendezvous: introduce the requester to `target`; answers with the target's address. */
  async #introduce(
    target: string,
    requester: PeerSession,
  ): Promise<{ host: string; port: number }> {
    if (this.pathOf(requester) === "relayed") {
      throw new TraversalError("no introductions over a relayed session");
    }
    const t = this.#directTo(target);
    this.stats.introductions++;
    await ask(t, NAT_PUNCH, { peer: requester.peer.nodeId, ...hostPort(requester) }, {
      timeoutMs: 2000,
    });
    return hostPort(t);
  }

  /**
   * At the rendezvous: the asker's punch failed; have the target dial the asker instead (a
   * symmetric NAT's new port reaches a peer that accepts anyone, but not the other way round).
   */
  async #dialback(target: string, requester: PeerSession): Promise<{ ok: boolean }> {
    if (this.pathOf(requester) === "relayed") {
      throw new TraversalError("no dial-backs over a relayed session");
    }
    return await ask(
      this.#directTo(target),
      NAT_DIAL,
      { peer: requester.peer.nodeId, ...hostPort(requester) },
      { timeoutMs: 9000 },
    );
  }

  /**
   * For a reachability check: a new connection to `addr` (never a pooled one, so what answers is
   * the address itself), which must be node `id`; closed at once.
   */
  async #reaches(addr: string, id: string): Promise<boolean> {
    try {
      const s = await this.h.dial(addr, REACH_DIAL_MS);
      void s.close("reachability checked");
      const ok = s.peer.nodeId === id;
      this.stats.reachChecks[ok ? "reached" : "unreached"]++;
      return ok;
    } catch {
      this.stats.reachChecks.unreached++;
      return false;
    }
  }

  /**
   * Whether other nodes can dial this node at its address: a neighbour dials it back on a new
   * connection (the question may travel over a relayed session: the dial-back is direct);
   * if that fails, two more try. `reachable` if one got through, `unreachable` only if two
   * different peers answered that they could not (one peer's word, or a timeout, does not make
   * this node a client), `unknown` otherwise (docs/dht.md, "Client mode").
   */
  async reachability(): Promise<"reachable" | "unreachable" | "unknown"> {
    const peers = this.h.rendezvous().filter(live);
    for (let i = peers.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [peers[i], peers[j]] = [peers[j]!, peers[i]!];
    }
    const asked = (some: PeerSession[]) =>
      Promise.all(
        some.map((s) =>
          ask(s, NAT_REACHABLE, {}, { timeoutMs: REACH_DIAL_MS + 2000 }).then(
            (a) => a.ok,
            () => null,
          )
        ),
      );
    const first = await asked(peers.slice(0, 1));
    if (first[0] === true) return "reachable";
    const answers = [...first, ...(await asked(peers.slice(1, REACH_ASK)))];
    if (answers.includes(true)) return "reachable";
    return answers.filter((a) => a === false).length >= 2 ? "unreachable" : "unknown";
  }

  /** At the target: dial the asker's public address (probes first), as told by the rendezvous. */
  async #dial(p: { peer: string; host: string; port: number }): Promise<{ ok: boolean }> {
    this.stats.dialbacks++;
    const conn = await punchConnect(this.h.endpoint, p.host, p.port);
    const s = await this.h.adopt(conn);
    if (s.peer.nodeId !== p.peer) {
      void s.close("not the node we were asked to dial");
      throw new TraversalError(`${p.host}:${p.port} is ${s.peer.nodeId}, not ${p.peer}`);
    }
    await this.#markPunched(s);
    return { ok: true };
  }

  /** A session this node punched: marked here, and the peer is told (bounded, best effort). */
  async #markPunched(s: PeerSession): Promise<void> {
    this.punched.add(s);
    await ask(s, NAT_PUNCHED, {}, { timeoutMs: 2000 }).catch(() => {});
  }

  /**
   * At the relay: allocate a relayed session between the requester and `target` (quotas in
   * lib/nat/relay.ts), tell the target its token, answer with the requester's.
   */
  async #relayOpen(target: string, requester: PeerSession): Promise<{ token: string }> {
    const relay = this.h.relay;
    if (!relay) throw new TraversalError("this node does not relay (relay.enabled: false)");
    if (this.pathOf(requester) === "relayed") {
      throw new TraversalError("no relaying over a relayed session");
    }
    const t = this.#directTo(target);
    // An end's address is that of any direct session with it: a session may close (a duplicate
    // route, a pool eviction) while another carries on, from the same socket and NAT mapping.
    const end = (s: PeerSession) => ({ nodeId: s.peer.nodeId, remote: this.#addressOf(s) });
    const a = relay.allocate(end(requester), end(t));
    try {
      await ask(
        t,
        RELAY_ACCEPT,
        { peer: requester.peer.nodeId, token: Buffer.from(a.tokenB).toString("hex") },
        { timeoutMs: 3000 },
      );
    } catch (e) {
      relay.release(a.id);
      throw new TraversalError(
        `${short(target)} did not take the relayed session: ${(e as Error).message}`,
        { cause: e },
      );
    }
    return { token: Buffer.from(a.tokenA).toString("hex") };
  }

  /** At the target: a relayed session from `peer` will come through the relay `r`. */
  #relayAccept(p: { peer: string; token: string }, r: PeerSession): { ok: boolean } {
    if (this.pathOf(r) === "relayed") {
      throw new TraversalError("no relaying over a relayed session");
    }
    // Bounded: tunnels waiting for their session, per relay.
    const via = r.peer.nodeId;
    const waiting = this.#waiting.get(via) ?? 0;
    if (waiting >= MAX_WAITING_TUNNELS) {
      throw new TraversalError(
        `${MAX_WAITING_TUNNELS} relayed sessions from ${short(via)} still to come`,
      );
    }
    this.#waiting.set(via, waiting + 1);
    const addr = this.#tunnel(p.token, r, p.peer);
    // A session that does not come is not waited for forever.
    this.#later(15_000, () => {
      const n = (this.#waiting.get(via) ?? 1) - 1;
      if (n > 0) this.#waiting.set(via, n);
      else this.#waiting.delete(via);
      if (this.#tunnelPeers.has(addr.port) && !this.#hasSessionAt(addr)) this.#closeTunnel(addr);
    });
    return { ok: true };
  }

  /**
   * The address of `s`'s peer, per packet: that of `s` while it lives, else of another direct
   * session with the same node (looked up only then), or null.
   */
  #addressOf(s: PeerSession): () => HostPort | null {
    let cur: PeerSession | undefined = s;
    return () => {
      if (!cur || !live(cur)) cur = this.#sessionTo(s.peer.nodeId, { direct: true });
      return cur?.conn.remote ?? null;
    };
  }

  #tunnel(token: string, r: PeerSession, peer: string): HostPort {
    const addr = this.tunnels.open(Buffer.from(token, "hex"), this.#addressOf(r));
    this.#tunnelPeers.set(addr.port, { peer, via: r.peer.nodeId });
    return addr;
  }

  #closeTunnel(addr: HostPort): void {
    this.#tunnelPeers.delete(addr.port);
    this.tunnels.close(addr);
  }

  #hasSessionAt(addr: HostPort): boolean {
    for (const s of this.h.sessions()) {
      if (s.conn.remote.port === addr.port && s.conn.remote.host === addr.host) return true;
    }
    return false;
  }

  /**
   * Every new session. One through a tunnel must be from the peer the relay announced (else it
   * is closed); its tunnel closes with it. (One a peer punched towards us is marked when the peer
   * says so: `nat.punched`.)
   */
  sessionOpened(s: PeerSession): void {
    const remote = s.conn.remote;
    if (this.tunnels.has(remote)) {
      const addr = { ...remote };
      const t = this.#tunnelPeers.get(addr.port);
      void s.closed.then(() => this.#closeTunnel(addr));
      if (!t || t.peer !== s.peer.nodeId) {
        void s.close(`the relay announced another node than ${short(s.peer.nodeId)}`);
        return;
      }
      this.#relayedVia.set(s, t.via);
      const r = this.#sessionTo(t.via, { direct: true });
      if (r) this.#watchRelay(s, r);
      // Moved to a direct path later (by the other side): it was punched.
      s.conn.onPeerMigrated(() => {
        if (!this.tunnels.has(s.conn.remote)) this.#moved(s);
      });
    }
  }

  /**
   * A session to `target`, the best way available (see the top of this file). What worked last
   * time (for 10 minutes) goes first: a peer last reached over a relay is relayed again at once
   * (and its session keeps trying to move to a direct path), one last punched is not dialed.
   */
  async connect(target: string, o: { relayOnly?: boolean } = {}): Promise<Reached> {
    const tried: string[] = [];
    const started = monoNow();
    // Only the first session is the answer; a branch that loses the race closes its session if
    // relayed (it holds a relay's quota) and learns nothing.
    let winner: PeerSession | undefined;
    const done = (session: PeerSession, path: PathKind, via?: string): Reached => {
      if (winner && winner !== session) {
        if (path === "relayed") void session.close("superseded by another path");
        throw new TraversalError(`superseded by another path (${path} came later)`);
      }
      winner = session;
      if (!o.relayOnly) this.#learn(target, path);
      return {
        session,
        path,
        ...(via ? { via } : {}),
        elapsedMs: round(monoNow() - started),
        tried,
      };
    };
    const open = this.#sessionTo(target, { relayed: o.relayOnly });
    if (open) return done(open, this.pathOf(open), this.viaOf(open));
    const known = this.#learned.get(target);
    const last = known && monoNow() - known.at < 600_000 ? known.path : undefined;
    // Happy eyeballs: the direct dial gets a head start of DIRECT_HEAD_START_MS, then the
    // traversal through a rendezvous runs alongside it; the first session wins. (A member's
    // advertised address is often one only its LAN can dial: waiting out the dial's 3 s would
    // delay every punch.)
    const addr = !o.relayOnly && (last === undefined || last === "direct")
      ? this.h.addressOf(target)
      : undefined;
    let direct: Promise<Reached> | undefined;
    if (addr) {
      direct = this.h.dial(addr, 3000).then((s) => {
        if (s.peer.nodeId !== target) throw new TraversalError(`${addr} is ${s.peer.nodeId}`);
        return done(s, "direct");
      }).catch((e) => {
        tried.push(`direct ${addr}: ${(e as Error).message}`);
        throw e;
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const head = await Promise.race([
        direct.then((r) => r, () => null),
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), DIRECT_HEAD_START_MS);
        }),
      ]);
      clearTimeout(timer);
      if (head) return head;
    }
    const race = { over: false };
    const traversal = this.#traverse(target, o, last, tried, done, race);
    if (!direct) return await traversal;
    try {
      return await Promise.any([direct, traversal]);
    } catch (e) {
      throw new TraversalError(`cannot reach ${target}: ${tried.join("; ")}`, { cause: e });
    } finally {
      race.over = true; // the traversal stops at its next step
    }
  }

  /** Through a rendezvous: punching and the dial-back, and a relay (first when it worked last). */
  async #traverse(
    target: string,
    o: { relayOnly?: boolean },
    last: PathKind | undefined,
    tried: string[],
    done: (s: PeerSession, path: PathKind, via?: string) => Reached,
    race: { over: boolean } = { over: false },
  ): Promise<Reached> {
    const superseded = () => new TraversalError("superseded by a direct session");
    const rendezvous = this.h.rendezvous().filter((r) =>
      r.peer.nodeId !== target && this.pathOf(r) !== "relayed" && live(r)
    );
    for (const r of rendezvous.slice(0, 3)) {
      const via = r.peer.nodeId;
      const relay = async () => {
        if (race.over) throw superseded();
        try {
          const s = await this.#relayVia(r, target);
          if (race.over) {
            void s.close("superseded by a direct session");
            throw superseded();
          }
          return done(s, "relayed", via);
        } catch (e) {
          tried.push(`relay via ${short(via)}: ${(e as Error).message}`);
          return undefined;
        }
      };
      if (o.relayOnly || last === "relayed") {
        const got = await relay();
        if (got) return got;
        if (o.relayOnly) continue;
      }
      if (race.over) throw superseded();
      const punched = await this.#punchVia(r, target, tried);
      if (punched) return done(punched, "punched", via);
      if (last !== "relayed") {
        const got = await relay();
        if (got) return got;
      }
    }
    throw new TraversalError(
      `cannot reach ${target}: ${tried.join("; ") || "no rendezvous node"}`,
    );
  }

  #learn(target: string, path: PathKind): void {
    this.#learned.delete(target);
    this.#learned.set(target, { path, at: monoNow() });
    if (this.#learned.size > 4096) this.#learned.delete(this.#learned.keys().next().value!);
  }

  /** Punching through `r`, then the target dialing back: a punched session, or undefined. */
  async #punchVia(
    r: PeerSession,
    target: string,
    tried: string[],
  ): Promise<PeerSession | undefined> {
    const via = r.peer.nodeId;
    try {
      const addr = await ask(r, NAT_INTRODUCE, { target }, { timeoutMs: 3000 });
      const conn = await punchConnect(this.h.endpoint, addr.host, addr.port);
      const s = await this.h.adopt(conn);
      if (s.peer.nodeId !== target) {
        void s.close("not the node we punched for");
        throw new TraversalError(`${addr.host}:${addr.port} is ${s.peer.nodeId}`);
      }
      await this.#markPunched(s);
      this.stats.punchedOk++;
      return s;
    } catch (e) {
      if (e instanceof PunchError) this.stats.punchFailed++;
      tried.push(`punch via ${short(via)}: ${(e as Error).message}`);
    }
    try {
      await ask(r, NAT_DIALBACK, { target }, { timeoutMs: 10_000 });
      // The target marked the session it dialed (nat.punched) before answering.
      const s = [...this.h.sessions()].find((x) =>
        x.peer.nodeId === target && live(x) && this.punched.has(x)
      );
      if (!s) throw new TraversalError("it dialed, but no session arrived");
      this.punched.add(s);
      this.stats.punchedOk++;
      return s;
    } catch (e) {
      tried.push(`dial back via ${short(via)}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** A relayed session to `target` through `r`. */
  async #relayVia(r: PeerSession, target: string): Promise<PeerSession> {
    const { token } = await ask(r, RELAY_OPEN, { target }, { timeoutMs: 5000 });
    const addr = this.#tunnel(token, r, target);
    let s: PeerSession;
    let conn: QuicConnection | undefined;
    try {
      conn = await withTimeout(
        this.h.endpoint.connect(addr),
        5000,
        () => new TraversalError("no handshake through the relay within 5000 ms"),
      );
      s = await this.h.adopt(conn);
    } catch (e) {
      void conn?.close(0, "no session through the relay");
      this.#closeTunnel(addr);
      throw e;
    }
    if (s.peer.nodeId !== target) {
      void s.close("not the node we asked the relay for");
      throw new TraversalError(`the relayed peer is ${s.peer.nodeId}, not ${target}`);
    }
    this.stats.relayedSessions++;
    this.#watchRelay(s, r);
    this.#scheduleUpgrade(s, target, this.h.upgradeAfterMs);
    return s;
  }

  /** The relay going away (no direct session with it left) ends a relayed session at once. */
  #watchRelay(s: PeerSession, r: PeerSession): void {
    void r.closed.then(() => {
      if (!live(s) || this.pathOf(s) !== "relayed") return;
      const other = this.#sessionTo(r.peer.nodeId, { direct: true });
      if (other) this.#watchRelay(s, other);
      else void s.close("the relay went away");
    });
  }

  /**
   * Tries to move the relayed session `s` (dialed by this node) to a direct path: after `delay`,
   * then at doubling intervals up to 16× the first, for as long as it is relayed.
   */
  #scheduleUpgrade(s: PeerSession, target: string, delay: number): void {
    this.#later(delay, () => {
      if (!live(s) || this.pathOf(s) !== "relayed") return;
      void this.#upgrade(s, target).then(
        () => this.#moved(s),
        (e) => {
          this.stats.upgradeFailed++;
          const next = Math.min(delay * 2, this.h.upgradeAfterMs * 16);
          this.h.log.info(
            "traversal.upgrade_failed",
            `relayed session to ${short(target)} stays relayed: ${
              (e as Error).message
            }; next try in ${next} ms`,
          );
          this.#scheduleUpgrade(s, target, next);
        },
      );
    });
  }

  /**
   * One upgrade attempt: a rendezvous introduces us (the target probes towards us), we probe
   * towards the target's public address and migrate the connection there (validated first).
   */
  async #upgrade(s: PeerSession, target: string): Promise<string> {
    if (this.#upgrading.has(s)) throw new TraversalError("a move is already under way");
    this.#upgrading.add(s);
    try {
      if (!s.conn.isClient) {
        // Only the dialing side of a QUIC connection can move it: ask the peer to.
        const { via } = await ask(s, NAT_UPGRADE, {}, { timeoutMs: 12_000 });
        if (typeof via !== "string") {
          throw new TraversalError("the peer did not move the session");
        }
        this.#moved(s);
        return via;
      }
      const r = this.h.rendezvous().find((x) =>
        x.peer.nodeId !== target && this.pathOf(x) !== "relayed" && live(x)
      );
      if (!r) throw new TraversalError("no rendezvous");
      const addr = await ask(r, NAT_INTRODUCE, { target }, { timeoutMs: 3000 });
      sendProbes(this.h.endpoint, addr.host, addr.port);
      const move = s.conn.moveTo(addr);
      // A move that validates after the bound below still counts.
      move.then(() => this.#moved(s), () => {});
      await withTimeout(
        move,
        6000,
        () => new TraversalError(`no path to ${addr.host}:${addr.port} within 6000 ms`),
      );
      this.#moved(s);
      return r.peer.nodeId;
    } finally {
      this.#upgrading.delete(s);
    }
  }

  /** A relayed session of this node now runs on a punched path (counted once per session). */
  #moved(s: PeerSession): void {
    this.punched.add(s);
    if (this.#movedSessions.has(s)) return;
    this.#movedSessions.add(s);
    this.stats.upgraded++;
    this.#learn(s.peer.nodeId, "punched");
    this.h.log.info(
      "traversal.upgraded",
      `relayed session with ${short(s.peer.nodeId)} moved to a punched path`,
      { peer: s.peer.nodeId },
    );
  }

  /**
   * Reaches `target` the best way available and pings it once. With `upgrade`, a relayed session
   * first tries to move to a direct path now.
   */
  async reach(
    target: string,
    o: { relayOnly?: boolean; upgrade?: boolean } = {},
  ): Promise<ReachResult> {
    const started = monoNow();
    let r = await this.connect(target, o);
    if (o.upgrade && !o.relayOnly && r.path === "relayed") {
      try {
        r.via = await this.#upgrade(r.session, target);
        r.path = "punched";
        this.#moved(r.session);
      } catch (e) {
        this.stats.upgradeFailed++;
        r.tried.push(`move to a direct path: ${(e as Error).message}`);
      }
    }
    let t0 = monoNow();
    try {
      await ask(r.session, PING, {}, { timeoutMs: 2000 });
    } catch (e) {
      // The session closed under the ping (a duplicate of a session both sides made at once,
      // say): once more, on whatever session there is now.
      if (live(r.session)) throw e;
      const first = r;
      r = await this.connect(target, o);
      r.tried.unshift(...first.tried, `${first.path} session closed: ${(e as Error).message}`);
      t0 = monoNow();
      await ask(r.session, PING, {}, { timeoutMs: 2000 });
    }
    const now = monoNow();
    return {
      target,
      path: r.path,
      rttMs: round(now - t0),
      elapsedMs: round(now - started),
      ...(r.via ? { via: r.via } : {}),
      tried: r.tried,
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
