/**
 * Relaying QUIC packets between two peers that cannot reach each other (docs/nat-traversal.md,
 * "Relays"). The relay never sees inside: the two peers run their own QUIC connection, with
 * mutual TLS end to end, through tunnels (`QuicEndpoint.openTunnel`); the relay forwards its
 * packets, each wrapped in a small header, between the addresses of the sessions it has with both.
 *
 * On the wire (UDP, from and to the QUIC sockets, in the non-QUIC range of RFC 9443's demux):
 *
 *     0x3e | token (16 bytes) | QUIC packet
 *
 * Each end of an allocation has its own token, handed out over its authenticated session with
 * the relay; the relay accepts a token only from the address of that end's session, and forwards
 * what it gets to the other end under the other end's token.
 *
 * `RelayServer` is the relay's side (allocations, quotas, rate limits); `RelayTunnels` is an
 * end's side (token → tunnel). Both are driven by the node; time and sending are injected.
 */
import { randomBytes } from "node:crypto";
import { type HostPort, sameHost, TUNNEL_HOST } from "../quic/mod.ts";
import { monoNow, RateLimiter } from "../util/mod.ts";
import { RelayRefused } from "./errors.ts";

/** First byte of a relayed packet: in 0x00–0x3f (not QUIC), past STUN (0–3), before "?" (probes). */
export const RELAY_BYTE = 0x3e;
export const TOKEN_LEN = 16;
const HEADER = 1 + TOKEN_LEN;

/** True when `data` is shaped like a relayed packet (header and at least one byte). */
export function isRelayPacket(data: Uint8Array): boolean {
  return data.length > HEADER && data[0] === RELAY_BYTE;
}

/** Wraps `packet` for the relay (or, at the relay, for an end). */
export function wrapRelayPacket(token: Uint8Array, packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + packet.length);
  out[0] = RELAY_BYTE;
  out.set(token, 1);
  out.set(packet, HEADER);
  return out;
}

const key = (data: Uint8Array, at = 0) =>
  Buffer.from(data.buffer, data.byteOffset + at, TOKEN_LEN).toString("hex");

/** Limits of a relay; every one is per relay node. */
export interface RelayLimits {
  /** Relayed sessions at once, all peers together. */
  maxSessions: number;
  /** Relayed sessions one peer may have opened here at once. */
  sessionsPerPeer: number;
  /** Bytes per second one peer may send through the relay (all its sessions together). */
  bytesPerSecond: number;
  /** Bytes a peer may send in a burst above the rate. */
  burstBytes: number;
  /** An allocation that carried nothing for this long is removed. */
  idleMs: number;
  /** An allocation that never carried a packet is removed after this long. */
  unusedMs: number;
}

export const RELAY_DEFAULTS: RelayLimits = {
  maxSessions: 1024,
  sessionsPerPeer: 16,
  bytesPerSecond: 1024 * 1024,
  burstBytes: 256 * 1024,
  idleMs: 60_000,
  unusedMs: 10_000,
};

/** A quota refused an allocation (errors.ts). */
export { RelayRefused };

/** One end of a relayed session, as the relay knows it: its id and current session address. */
export interface RelayEnd {
  nodeId: string;
  /** The address of the relay's session with this end, or null once that session closed. */
  remote(): HostPort | null;
}

interface Half {
  alloc: Allocation;
  end: RelayEnd;
  token: Uint8Array;
  other: Half;
}

interface Allocation {
  id: number;
  a: Half;
  b: Half;
  created: number;
  lastUsed: number;
  packets: number;
  bytes: number;
  /** An end had no session at the last sweep. */
  gone: boolean;
}

/** Counters of a relay. */
export interface RelayStats {
  allocations: number;
  refused: number;
  packets: number;
  bytes: number;
  /** Dropped: a known token from an address other than its end's session. */
  droppedWrongSource: number;
  /** Dropped: the sender was over its rate. */
  droppedRate: number;
  /** Dropped: the other end's session is gone (the allocation is removed). */
  droppedGone: number;
}

/** An allocation as `macula inspect node` shows it. */
export interface RelayAllocationInfo {
  a: string;
  b: string;
  packets: number;
  bytes: number;
  ageMs: number;
  idleMs: number;
}

/** The relay's side. */
export class RelayServer {
  readonly stats: RelayStats = {
    allocations: 0,
    refused: 0,
    packets: 0,
    bytes: 0,
    droppedWrongSource: 0,
    droppedRate: 0,
    droppedGone: 0,
  };
  readonly #halves = new Map<string, Half>();
  readonly #allocs = new Map<number, Allocation>();
  readonly #perPeer = new Map<string, number>();
  /** A byte-rate bucket per sending peer (ends of allocations: at most 2 × maxSessions). */
  readonly #buckets: RateLimiter<string>;
  #ids = 1;

  constructor(
    private readonly o: {
      limits: RelayLimits;
      now: () => number;
      randomBytes: (n: number) => Uint8Array;
      /** Sends a datagram from the relay's QUIC socket. */
      send: (data: Uint8Array, host: string, port: number) => void;
    },
  ) {
    const l = o.limits;
    this.#buckets = new RateLimiter({
      perSecond: l.bytesPerSecond,
      burst: l.burstBytes,
      maxKeys: 2 * l.maxSessions,
    });
  }

  /** Allocates a relayed session between `a` and `b`; throws `RelayRefused` over a quota. */
  allocate(a: RelayEnd, b: RelayEnd): { id: number; tokenA: Uint8Array; tokenB: Uint8Array } {
    const l = this.o.limits;
    const refuse = (why: string): never => {
      this.stats.refused++;
      throw new RelayRefused(why);
    };
    if (a.nodeId === b.nodeId) refuse("a node cannot relay to itself");
    if (this.#allocs.size >= l.maxSessions) {
      refuse(`relay full: ${this.#allocs.size} relayed sessions (relay.max_sessions)`);
    }
    // Counted against the one who asks: a peer cannot use up another's quota by asking for
    // sessions to it.
    const n = this.#perPeer.get(a.nodeId) ?? 0;
    if (n >= l.sessionsPerPeer) {
      refuse(
        `node ${
          a.nodeId.slice(0, 12)
        }… already has ${n} relayed sessions here (relay.sessions_per_peer)`,
      );
    }
    const now = this.o.now();
    const alloc: Allocation = {
      id: this.#ids++,
      created: now,
      lastUsed: now,
      packets: 0,
      bytes: 0,
      gone: false,
      a: undefined!,
      b: undefined!,
    };
    const ha: Half = { alloc, end: a, token: this.o.randomBytes(TOKEN_LEN), other: undefined! };
    const hb: Half = { alloc, end: b, token: this.o.randomBytes(TOKEN_LEN), other: ha };
    ha.other = hb;
    alloc.a = ha;
    alloc.b = hb;
    this.#allocs.set(alloc.id, alloc);
    this.#halves.set(key(ha.token), ha);
    this.#halves.set(key(hb.token), hb);
    this.#perPeer.set(a.nodeId, n + 1);
    this.stats.allocations++;
    return { id: alloc.id, tokenA: ha.token, tokenB: hb.token };
  }

  /** Removes an allocation (its tokens stop working at once). */
  release(id: number): void {
    const alloc = this.#allocs.get(id);
    if (!alloc) return;
    this.#allocs.delete(id);
    for (const h of [alloc.a, alloc.b]) this.#halves.delete(key(h.token));
    const asker = alloc.a.end.nodeId;
    const n = (this.#perPeer.get(asker) ?? 1) - 1;
    if (n <= 0) this.#perPeer.delete(asker);
    else this.#perPeer.set(asker, n);
    // A peer's rate bucket goes with the last allocation it is an end of.
    for (const h of [alloc.a, alloc.b]) {
      const peer = h.end.nodeId;
      let still = false;
      for (const x of this.#allocs.values()) {
        if (x.a.end.nodeId === peer || x.b.end.nodeId === peer) still = true;
      }
      if (!still) this.#buckets.forget(peer);
    }
  }

  /**
   * A relayed packet from `host:port`: forwarded to the other end when the token is known, came
   * from its end's session address, and the sender is within its rate. False when the token is
   * not this relay's (the node then tries its own tunnels).
   */
  onPacket(data: Uint8Array, host: string, port: number): boolean {
    if (!isRelayPacket(data)) return false;
    const h = this.#halves.get(key(data, 1));
    if (!h) return false;
    const from = h.end.remote();
    const to = h.other.end.remote();
    if (!from || !to) {
      // An end between sessions (one closed, the next not yet there): dropped, and the
      // allocation is removed by `sweep` if the end stays gone.
      this.stats.droppedGone++;
      return true;
    }
    if (from.port !== port || !sameHost(from.host, host)) {
      this.stats.droppedWrongSource++;
      return true;
    }
    const now = this.o.now();
    if (!this.#buckets.take(h.end.nodeId, data.length, now)) {
      this.stats.droppedRate++;
      return true;
    }
    // Rewrite the token in place: the packet is ours for the duration of the call only.
    const out = data.slice();
    out.set(h.other.token, 1);
    this.o.send(out, to.host, to.port);
    const a = h.alloc;
    a.lastUsed = now;
    a.packets++;
    a.bytes += data.length;
    this.stats.packets++;
    this.stats.bytes += data.length;
    return true;
  }

  /**
   * Removes allocations idle past `idleMs`, never used after `unusedMs`, or with an end that had
   * no session here at this sweep and the one before (a session being replaced is not the end).
   */
  sweep(): number {
    const now = this.o.now();
    const l = this.o.limits;
    let n = 0;
    for (const a of [...this.#allocs.values()]) {
      const gone = !a.a.end.remote() || !a.b.end.remote();
      const goneBefore = a.gone;
      a.gone = gone;
      if (
        now - a.lastUsed >= l.idleMs || (a.packets === 0 && now - a.created >= l.unusedMs) ||
        (gone && goneBefore)
      ) {
        this.release(a.id);
        n++;
      }
    }
    return n;
  }

  /** The allocations, for inspection. */
  allocations(): RelayAllocationInfo[] {
    const now = this.o.now();
    return [...this.#allocs.values()].map((a) => ({
      a: a.a.end.nodeId,
      b: a.b.end.nodeId,
      packets: a.packets,
      bytes: a.bytes,
      ageMs: Math.round(now - a.created),
      idleMs: Math.round(now - a.lastUsed),
    }));
  }
}

/** A relay forwarding from an endpoint's socket, on the runtime's monotonic clock (`monoNow`). */
export function relayOn(
  endpoint: { sendRaw(data: Uint8Array, host: string, port: number): void },
  limits: RelayLimits,
): RelayServer {
  return new RelayServer({
    limits,
    now: monoNow,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    send: (d, host, port) => endpoint.sendRaw(d, host, port),
  });
}

/** What an end needs from its QUIC endpoint. */
export interface TunnelEndpoint {
  openTunnel(send: (packet: Uint8Array) => void): HostPort;
  tunnelReceive(addr: HostPort, packet: Uint8Array): void;
  closeTunnel(addr: HostPort): void;
  sendRaw(data: Uint8Array, host: string, port: number): void;
}

interface Tunnel {
  addr: HostPort;
  relay: () => HostPort | null;
}

/** An end's side: one tunnel per relayed session, keyed by this end's token. */
export class RelayTunnels {
  readonly stats = { packetsIn: 0, packetsOut: 0, droppedWrongSource: 0 };
  readonly #byToken = new Map<string, Tunnel>();
  readonly #byPort = new Map<number, string>();

  constructor(private readonly ep: TunnelEndpoint) {}

  /**
   * A tunnel through the relay whose session address `relay()` gives (null once it is gone): the
   * address to dial, or that the peer's connection will come from.
   */
  open(token: Uint8Array, relay: () => HostPort | null): HostPort {
    const k = key(token);
    const old = this.#byToken.get(k);
    if (old) this.close(old.addr);
    const addr = this.ep.openTunnel((packet) => {
      const r = relay();
      if (!r) return;
      this.stats.packetsOut++;
      this.ep.sendRaw(wrapRelayPacket(token, packet), r.host, r.port);
    });
    this.#byToken.set(k, { addr, relay });
    this.#byPort.set(addr.port, k);
    return addr;
  }

  /** A relayed packet from `host:port`; false when the token is not one of ours. */
  onPacket(data: Uint8Array, host: string, port: number): boolean {
    if (!isRelayPacket(data)) return false;
    const t = this.#byToken.get(key(data, 1));
    if (!t) return false;
    const r = t.relay();
    if (!r || r.port !== port || !sameHost(r.host, host)) {
      this.stats.droppedWrongSource++;
      return true;
    }
    this.stats.packetsIn++;
    this.ep.tunnelReceive(t.addr, data.subarray(HEADER));
    return true;
  }

  /** True when `addr` is one of these tunnels. */
  has(addr: HostPort): boolean {
    return addr.host === TUNNEL_HOST && this.#byPort.has(addr.port);
  }

  close(addr: HostPort): void {
    const k = this.#byPort.get(addr.port);
    if (k === undefined) return;
    this.#byPort.delete(addr.port);
    this.#byToken.delete(k);
    this.ep.closeTunnel(addr);
  }

  get size(): number {
    return this.#byToken.size;
  }
}
