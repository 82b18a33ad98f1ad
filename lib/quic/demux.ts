/**
 * Where a received packet goes, and who may start a connection. The demux reads the first byte:
 * not QUIC (RFC 9443: 0–63, e.g. STUN 0–3) goes to the `onNonQuic` hook sharing the socket;
 * QUIC goes to its connection by destination connection id (with a fast path for a run of
 * packets to one connection). A long-header packet for no known connection is a candidate: it
 * is admitted only as a well-formed Initial of a version we speak (else version negotiation),
 * within the handshake and connection limits, and, with `retry`, once it carries a valid
 * stateless retry token (RFC 9000 §8.1.2). Every drop is counted by reason.
 */
import { randomBytes } from "node:crypto";
import type { QuicConnection } from "./connection.ts";
import { TUNING } from "./defaults.ts";
import { type HostPort, quiche } from "./native.ts";
import { RetryTokens } from "./retry.ts";
import type { PacketHandler } from "./udp.ts";
import { monoNow } from "../util/mod.ts";

const CID_LEN = TUNING.cidLength;
const TYPE_INITIAL = 0;

/** The demux's counters (part of `EndpointStats`). */
export interface DemuxStats {
  packetsReceived: number;
  /** Packets that could not be parsed as QUIC (garbage, truncated). */
  droppedInvalid: number;
  /** Short-header packets for no connection we know. */
  droppedUnknownConnection: number;
  /** Non-QUIC packets with no `onNonQuic` handler. */
  droppedNotQuic: number;
  /** Initial packets refused by the handshake or connection limits, or because we do not accept. */
  droppedRefused: number;
  /** Initial packets carrying a forged, foreign or expired retry token. */
  droppedBadToken: number;
  /** Initials refused because their source address had `maxHandshakesPerSource` in flight. */
  droppedPerSource: number;
  /** Handshakes closed for taking longer than `handshakeTimeoutMs`. */
  handshakesTimedOut: number;
  retriesSent: number;
  versionNegotiationsSent: number;
}

/** What admission is held to (from the endpoint options). */
export interface AdmissionLimits {
  retry: boolean;
  retryTokenLifetimeMs: number;
  maxHandshakes: number;
  maxHandshakesPerSource: number;
  handshakeTimeoutMs: number;
  maxConnections: number;
}

/** What the demux needs from its endpoint. */
export interface DemuxHost {
  /** Marks a connection for servicing and sending in the next flush. */
  dirty(c: QuicConnection): void;
  /** Sends one packet now (version negotiation, retry). */
  sendNow(data: Uint8Array, port: number, host: string): void;
  /** True while the endpoint accepts connections (it has a server role and is not closing). */
  accepting(): boolean;
  /** Connections the endpoint holds (both roles). */
  readonly connectionCount: number;
  /**
   * Creates the accepting side of a connection (registered with the endpoint), or null when
   * quiche refuses the Initial.
   */
  accept(scid: Uint8Array, odcid: Uint8Array | null, remote: HostPort): QuicConnection | null;
}

/** True when `d[1..21]` (a short header's connection id) equals `cid`. */
function sameCid(d: Uint8Array, cid: Uint8Array): boolean {
  for (let i = 0; i < CID_LEN; i++) if (d[i + 1] !== cid[i]) return false;
  return true;
}

function cidKey(d: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(d[i]!);
  return s;
}

/** The connection table, the non-QUIC hook, and admission of new connections. */
export class Demux {
  readonly stats: DemuxStats = {
    packetsReceived: 0,
    droppedInvalid: 0,
    droppedUnknownConnection: 0,
    droppedNotQuic: 0,
    droppedRefused: 0,
    droppedBadToken: 0,
    droppedPerSource: 0,
    handshakesTimedOut: 0,
    retriesSent: 0,
    versionNegotiationsSent: 0,
  };
  /** Handler for packets that are not QUIC; null drops (and counts) them. */
  nonQuic: PacketHandler | null;
  readonly #host: DemuxHost;
  readonly #limits: AdmissionLimits;
  readonly #tokens: RetryTokens;
  /** Connections by connection id (as a string of its bytes). */
  readonly #table = new Map<string, QuicConnection>();
  /** Accepted connections whose handshake is under way, with when they must be done. */
  readonly #handshaking = new Map<QuicConnection, { deadline: number; source: string }>();
  /** Handshakes in flight per source IP. */
  readonly #perSource = new Map<string, number>();
  /** The connection of the last short-header packet, and its connection id (fast path). */
  #lastConn: QuicConnection | null = null;
  readonly #lastCid = new Uint8Array(CID_LEN);
  readonly #out = new Uint8Array(1500);

  constructor(host: DemuxHost, limits: AdmissionLimits, nonQuic: PacketHandler | null) {
    this.#host = host;
    this.#limits = limits;
    this.#tokens = new RetryTokens(limits.retryTokenLifetimeMs);
    this.nonQuic = nonQuic;
  }

  /** Handshakes in flight (accepted, not yet established). */
  get handshakes(): number {
    return this.#handshaking.size;
  }

  /** Routes packets for `cid` to `c`, or stops routing them with `null`. */
  route(cid: Uint8Array, c: QuicConnection | null): void {
    const k = cidKey(cid, 0, cid.length);
    if (c) this.#table.set(k, c);
    else {
      this.#table.delete(k);
      this.#lastConn = null;
    }
  }

  /** The handshake of `c` ended (established or closed): its slot is free. */
  handshakeOver(c: QuicConnection): void {
    const hs = this.#handshaking.get(c);
    if (!hs) return;
    this.#handshaking.delete(c);
    const h = hs.source;
    const n = (this.#perSource.get(h) ?? 1) - 1;
    if (n > 0) this.#perSource.set(h, n);
    else this.#perSource.delete(h);
  }

  /** Closes handshakes past their deadline (checked when a slot is wanted: that is when it matters). */
  #expire(now: number): void {
    for (const [c, { deadline }] of this.#handshaking) {
      if (deadline > now) continue;
      this.handshakeOver(c);
      this.stats.handshakesTimedOut++;
      void c.close(0, "handshake took too long").catch(() => {});
    }
  }

  /** One received packet, from `host:port` to the socket bound at `local`. */
  onPacket(data: Uint8Array, host: string, port: number, local: HostPort): void {
    this.stats.packetsReceived++;
    const b0 = data[0];
    if (b0 === undefined) {
      this.stats.droppedInvalid++;
      return;
    }
    if ((b0 & 0x40) === 0) {
      // Not QUIC (RFC 9443 §2): STUN and friends.
      const h = this.nonQuic;
      if (h) {
        try {
          h(data, host, port);
        } catch {
          // a handler's bug must not take the endpoint down
        }
      } else this.stats.droppedNotQuic++;
      return;
    }
    let key: string;
    if (b0 & 0x80) {
      const len = data[5];
      if (data.length < 7 || len === undefined || len > 20 || data.length < 6 + len) {
        this.stats.droppedInvalid++;
        return;
      }
      key = cidKey(data, 6, 6 + len);
    } else {
      if (data.length < 1 + CID_LEN) {
        this.stats.droppedInvalid++;
        return;
      }
      // Fast path: most packets belong to the connection the previous one did.
      const last = this.#lastConn;
      if (last !== null && sameCid(data, this.#lastCid)) {
        const r = last.remote;
        last.recv(data, r.port === port && r.host === host ? r : { host, port }, local);
        this.#host.dirty(last);
        return;
      }
      key = cidKey(data, 1, 1 + CID_LEN);
    }
    const conn = this.#table.get(key);
    if (conn && !(b0 & 0x80)) {
      this.#lastConn = conn;
      this.#lastCid.set(data.subarray(1, 1 + CID_LEN));
    }
    if (conn) {
      const r = conn.remote;
      conn.recv(data, r.port === port && r.host === host ? r : { host, port }, local);
      this.#host.dirty(conn);
      return;
    }
    if (b0 & 0x80) this.#admit(data, host, port);
    else this.stats.droppedUnknownConnection++;
  }

  /** A long-header packet for no known connection: a new connection, if it may be one. */
  #admit(data: Uint8Array, host: string, port: number): void {
    const stats = this.stats;
    let hdr;
    try {
      hdr = quiche.Header.fromSlice(data, CID_LEN);
    } catch {
      stats.droppedInvalid++;
      return;
    }
    if (!quiche.versionIsSupported(hdr.version)) {
      if (data.length < 1200) {
        stats.droppedInvalid++;
        return;
      }
      try {
        const n = quiche.negotiateVersion(hdr.scid, hdr.dcid, this.#out);
        this.#host.sendNow(this.#out.subarray(0, n), port, host);
        stats.versionNegotiationsSent++;
      } catch {
        stats.droppedInvalid++;
      }
      return;
    }
    if (hdr.ty !== TYPE_INITIAL) {
      stats.droppedUnknownConnection++;
      return;
    }
    if (data.length < 1200) {
      stats.droppedInvalid++;
      return;
    }
    const limits = this.#limits;
    const now = monoNow();
    if (
      this.#handshaking.size >= limits.maxHandshakes ||
      (this.#perSource.get(host) ?? 0) >= limits.maxHandshakesPerSource
    ) this.#expire(now);
    if (
      !this.#host.accepting() ||
      this.#handshaking.size >= limits.maxHandshakes ||
      this.#host.connectionCount >= limits.maxConnections
    ) {
      stats.droppedRefused++;
      return;
    }
    if ((this.#perSource.get(host) ?? 0) >= limits.maxHandshakesPerSource) {
      stats.droppedPerSource++;
      return;
    }
    let scid: Uint8Array;
    let odcid: Uint8Array | null = null;
    if (limits.retry) {
      const token = hdr.token;
      if (!token || token.length === 0) {
        const newScid = randomBytes(CID_LEN);
        const tok = this.#tokens.issue(hdr.dcid, host, port);
        try {
          const n = quiche.retry(hdr.scid, hdr.dcid, newScid, tok, hdr.version, this.#out);
          this.#host.sendNow(this.#out.subarray(0, n), port, host);
          stats.retriesSent++;
        } catch {
          stats.droppedInvalid++;
        }
        return;
      }
      odcid = this.#tokens.check(token, host, port);
      if (odcid === null || hdr.dcid.length !== CID_LEN) {
        stats.droppedBadToken++;
        return;
      }
      scid = hdr.dcid;
    } else {
      scid = randomBytes(CID_LEN);
    }
    const conn = this.#host.accept(scid, odcid, { host, port });
    if (conn === null) {
      stats.droppedInvalid++;
      return;
    }
    // Until the client learns our cid, its packets carry the dcid it chose.
    if (odcid === null) conn.addRoute(hdr.dcid);
    this.#handshaking.set(conn, { deadline: now + limits.handshakeTimeoutMs, source: host });
    this.#perSource.set(host, (this.#perSource.get(host) ?? 0) + 1);
    conn.recv(data, conn.remote, conn.local);
    this.#host.dirty(conn);
  }
}
