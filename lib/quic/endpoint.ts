/**
 * A QUIC endpoint: one UDP socket that both dials and accepts (hole punching needs that), and
 * the connections on it. `QuicEndpoint` composes the parts, each in its own file:
 *
 * | part                                                   | file         |
 * | ------------------------------------------------------ | ------------ |
 * | options, their defaults, the quiche config per role    | config.ts    |
 * | the active socket and those retiring after `rebind`    | sockets.ts   |
 * | packet demux, the non-QUIC hook, admission (retry)     | demux.ts     |
 * | send scheduling: dirty list, flush, ACK hold, timers   | sender.ts    |
 * | tunnels (relayed connections), `TUNNEL_HOST`           | tunnels.ts   |
 *
 * This file holds the connection table's life cycle: dial, accept, the peer check, close,
 * `rebind`, and the counters.
 */
import { randomBytes } from "node:crypto";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import {
  connectionLimits,
  type QuicEndpointOptions,
  quicheConfig,
  type ResolvedOptions,
  resolveOptions,
} from "./config.ts";
import { type ConnectionHost, type ConnectionLimits, QuicConnection } from "./connection.ts";
import { QUIC_DEFAULTS, TUNING } from "./defaults.ts";
import { Demux, type DemuxStats } from "./demux.ts";
import { ConnectionClosedError, QuicError } from "./errors.ts";
import { type Config, type HostPort, quiche } from "./native.ts";
import { Sender } from "./sender.ts";
import { EndpointSockets } from "./sockets.ts";
import { RecvSlab } from "./stream.ts";
import { TUNNEL_HOST, Tunnels } from "./tunnels.ts";
import { openUdpSocket, type PacketHandler } from "./udp.ts";

/** Counters of an endpoint, readable at any time. */
export interface EndpointStats extends DemuxStats {
  packetsSent: number;
  handshakesInFlight: number;
  connections: number;
  connectionsAccepted: number;
  connectionsDialed: number;
  /** Incoming connections that ended before their handshake finished (refused, or silent). */
  handshakesFailed: number;
  /** Datagrams the socket could not hand to the kernel (send buffer full past our bound). */
  socketSendDropped: number;
  /** Sockets left by `rebind` and still open for packets in flight to them. */
  socketsRetiring: number;
}

/**
 * Traffic totals over every connection the endpoint has had (open ones and closed ones), as QUIC
 * counts it: UDP payload bytes, packets declared lost and retransmitted. Read at any time (for
 * metrics); a closed connection's numbers are added once, when it closes.
 */
export interface EndpointTraffic {
  bytesSent: number;
  bytesReceived: number;
  bytesLost: number;
  packetsLost: number;
  packetsRetransmitted: number;
}

/** Application close code used when `checkPeer` refuses a peer. */
export const PEER_REJECTED = 0x1;

/** A QUIC endpoint on one UDP socket. Create with `QuicEndpoint.bind`. */
export class QuicEndpoint implements ConnectionHost, AsyncIterable<QuicConnection> {
  readonly slab = new RecvSlab();
  readonly #opts: ResolvedOptions;
  readonly #limits: ConnectionLimits;
  readonly #serverConfig: Config | null;
  readonly #clientConfig: Config;
  readonly #sockets: EndpointSockets;
  readonly #tunnels = new Tunnels();
  readonly #demux: Demux;
  readonly #sender: Sender;
  readonly #conns = new Set<QuicConnection>();
  readonly #pendingConnects = new Map<
    QuicConnection,
    { resolve: (c: QuicConnection) => void; reject: (e: Error) => void }
  >();
  #accepted: QuicConnection[] = [];
  #acceptWaiter: ((c: QuicConnection | null) => void) | null = null;
  #closing = false;
  #connectionsAccepted = 0;
  #connectionsDialed = 0;
  #handshakesFailed = 0;
  /** The traffic of connections that have closed (`traffic` adds the open ones'). */
  readonly #closedTraffic: EndpointTraffic = {
    bytesSent: 0,
    bytesReceived: 0,
    bytesLost: 0,
    packetsLost: 0,
    packetsRetransmitted: 0,
  };

  private constructor(options: QuicEndpointOptions) {
    const opts = resolveOptions(options);
    this.#opts = opts;
    this.#limits = connectionLimits(opts);
    this.#clientConfig = quicheConfig(opts, false);
    this.#serverConfig = opts.acceptIncoming ? quicheConfig(opts, true) : null;
    this.#sockets = new EndpointSockets(
      opts.socketFactory ?? openUdpSocket,
      (d, h, p, local) => this.#demux.onPacket(d, h, p, local),
      opts.maxUdpPayload,
    );
    const conns = this.#conns;
    this.#demux = new Demux(
      {
        dirty: (c) => this.#sender.dirty(c),
        sendNow: (d, port, host) => this.#sender.sendNow(d, port, host),
        accepting: () => this.#serverConfig !== null && !this.#closing,
        get connectionCount() {
          return conns.size;
        },
        accept: (scid, odcid, remote) => this.#acceptConnection(scid, odcid, remote),
      },
      opts,
      opts.onNonQuic ?? null,
    );
    this.#sender = new Sender(
      { sent: (c) => this.#sent(c) },
      this.#sockets,
      this.#tunnels,
      opts.maxUdpPayload,
      opts.keepAliveMs,
    );
  }

  /** Opens the socket and starts the endpoint. Rejects with a clear error for bad options. */
  static async bind(opts: QuicEndpointOptions): Promise<QuicEndpoint> {
    const ep = new QuicEndpoint(opts);
    const { host, port } = ep.#opts;
    try {
      await ep.#sockets.bind(host, port);
    } catch (e) {
      throw new QuicError(`cannot bind UDP ${host}:${port}: ${(e as Error).message}`, { cause: e });
    }
    return ep;
  }

  /** The bound address (the port the kernel chose when 0 was asked). */
  get address(): HostPort {
    return this.#sockets.local;
  }

  /** Counters: packets, drops by reason, retries, handshakes and connections. */
  get stats(): EndpointStats {
    const d = this.#demux.stats;
    const s = this.#sockets;
    return {
      ...d,
      packetsSent: s.packetsSent,
      handshakesInFlight: this.#demux.handshakes,
      connections: this.#conns.size,
      connectionsAccepted: this.#connectionsAccepted,
      connectionsDialed: this.#connectionsDialed,
      handshakesFailed: this.#handshakesFailed,
      socketSendDropped: s.active.stats.sendDropped,
      socketsRetiring: s.retiring,
    };
  }

  /**
   * Bytes, losses and retransmissions over every connection this endpoint has had: those that
   * closed (added up as each closed) and those open now (read from quiche on each call).
   */
  get traffic(): EndpointTraffic {
    const t = { ...this.#closedTraffic };
    for (const c of this.#conns) addTraffic(t, c);
    return t;
  }

  /** Connections currently known (any state). */
  get connections(): QuicConnection[] {
    return [...this.#conns];
  }

  // ------------------------------------------------------------------ public API

  /**
   * Dials `to` and resolves with the connection once TLS and `checkPeer` passed. Rejects with
   * `ConnectionClosedError` saying why otherwise (for example `TLS alert unknown_ca`, or an idle
   * timeout when nothing answers). A host name is resolved first, once per dial, to an address
   * of the socket's family (`cannot resolve <host>: …` when it does not); `serverName`, when
   * given, is sent as the TLS server name.
   */
  connect(to: HostPort, opts: { serverName?: string } = {}): Promise<QuicConnection> {
    // An address is dialed at once (no turn of the event loop before the connection exists).
    if (isIP(to.host) !== 0) return this.#dial(to, to.host, opts);
    return this.#resolve(to.host).then((address) => this.#dial(to, address, opts));
  }

  /** Starts the connection to `to` at `address` (`to.host` itself, or what it resolved to). */
  #dial(to: HostPort, address: string, opts: { serverName?: string }): Promise<QuicConnection> {
    if (this.#closing) return Promise.reject(new QuicError("endpoint is closed"));
    if (this.#conns.size >= this.#opts.maxConnections) {
      return Promise.reject(new QuicError("connection limit reached"));
    }
    const scid = randomBytes(TUNING.cidLength);
    const local = this.#sockets.local;
    const remote = { host: this.#sockets.peerHost(address), port: to.port };
    let native;
    try {
      native = quiche.Connection.connect(
        opts.serverName ?? null,
        scid,
        local,
        remote,
        this.#clientConfig,
      );
    } catch (e) {
      return Promise.reject(
        new QuicError(
          `cannot start a connection to ${to.host}:${to.port}: ${(e as Error).message}`,
          { cause: e },
        ),
      );
    }
    const conn = new QuicConnection(this, native, true, local, remote, scid, this.#limits);
    this.#conns.add(conn);
    this.#connectionsDialed++;
    const p = new Promise<QuicConnection>((resolve, reject) =>
      this.#pendingConnects.set(conn, { resolve, reject })
    );
    this.dirty(conn);
    return p;
  }

  /**
   * The address to dial for `host`: an IP address as it is; a name looked up, preferring the
   * socket's family (an IPv6 socket takes an IPv4 address too, IPv4-mapped).
   */
  async #resolve(host: string): Promise<string> {
    if (isIP(host) !== 0) return host;
    if (this.#closing) throw new QuicError("endpoint is closed");
    const v6 = this.#sockets.local.host.includes(":");
    let found: { address: string; family: number }[];
    try {
      found = await lookup(host, { all: true, family: v6 ? 0 : 4 });
    } catch (e) {
      throw new QuicError(`cannot resolve ${host}: ${resolveProblem(e)}`, { cause: e });
    }
    const pick = v6
      ? found.find((a) => a.family === 6) ?? found.find((a) => a.family === 4)
      : found.find((a) => a.family === 4);
    if (pick === undefined) {
      throw new QuicError(
        `cannot resolve ${host}: it has no ${v6 ? "" : "IPv4 "}address ` +
          `(this end's socket is ${v6 ? "IPv6" : "IPv4"})`,
      );
    }
    return pick.address;
  }

  /** The next accepted connection (already verified), or `null` once the endpoint is closed. */
  accept(): Promise<QuicConnection | null> {
    if (this.#accepted.length > 0) return Promise.resolve(this.#accepted.shift()!);
    if (this.#closing) return Promise.resolve(null);
    return new Promise((r) => (this.#acceptWaiter = r));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<QuicConnection> {
    for (;;) {
      const c = await this.accept();
      if (c === null) return;
      yield c;
    }
  }

  /** Routes non-QUIC packets (first byte 0–63: STUN and the like) to `handler`. */
  setNonQuicHandler(handler: PacketHandler | null): void {
    this.#demux.nonQuic = handler;
  }

  /** Sends a raw UDP datagram from the endpoint's socket (STUN, hole-punching probes). */
  sendRaw(data: Uint8Array, host: string, port: number): void {
    this.#sockets.sendNow(data, port, this.#sockets.peerHost(host));
  }

  /**
   * Opens a tunnel: an address (on `TUNNEL_HOST`) that connections can dial or be accepted from,
   * whose packets go to `send` instead of the socket, and whose incoming packets the owner feeds
   * with `tunnelReceive`. A relay carries QUIC this way: the connection inside stays end to end
   * (its own TLS), the relay only forwards packets. `send` must copy what it keeps.
   */
  openTunnel(send: (packet: Uint8Array) => void): HostPort {
    return this.#tunnels.open(send);
  }

  /** A packet that came through the tunnel at `addr`: handled as if the socket received it. */
  tunnelReceive(addr: HostPort, packet: Uint8Array): void {
    if (this.#closing || !this.#tunnels.has(addr.port)) return;
    this.#demux.onPacket(packet, TUNNEL_HOST, addr.port, this.#sockets.local);
  }

  /** Closes a tunnel: its packets are dropped from now on (its connections time out or close). */
  closeTunnel(addr: HostPort): void {
    this.#tunnels.close(addr.port);
  }

  /** Sets the IP TTL of packets sent from now on. */
  setTTL(ttl: number): void {
    this.#sockets.active.setTTL(ttl);
  }

  /**
   * Moves the endpoint to a new UDP socket (a new local port; same host unless given). Connections
   * this endpoint dialed migrate to it and keep their streams; connections it accepted cannot
   * migrate (QUIC servers keep their address) and are closed with reason "endpoint rebound".
   * The old socket stays open until the migrations finished and it carried nothing for `graceMs`
   * (default `QUIC_DEFAULTS.rebindGraceMs`, 2 s; `TUNING.rebindMaxMs`, 30 s, at most), so
   * packets in flight on the old path still get through.
   */
  async rebind(opts: { host?: string; port?: number; graceMs?: number } = {}): Promise<HostPort> {
    if (this.#closing) throw new QuicError("endpoint is closed");
    const sockets = this.#sockets;
    const host = opts.host ?? sockets.local.host;
    const fresh = await sockets.open(host, opts.port ?? QUIC_DEFAULTS.port);
    for (const c of this.#conns) {
      if (!c.isClient) {
        c.closeForEndpoint("endpoint rebound");
        this.dirty(c);
      }
    }
    this.#sender.flush();
    const old = sockets.switchTo(fresh, host);
    const local = sockets.local;
    for (const c of this.#conns) {
      if (c.isClient && c.state !== "closed") {
        try {
          c.migrateTo(local);
        } catch (e) {
          c.close(0x2, `migration failed: ${(e as Error).message}`);
        }
      }
    }
    // The old socket closes once no migration is pending and it has carried nothing for
    // `graceMs` (quiche recovers packets in flight on the old path there, per path), or when
    // unfinished migrations are given up. (A lost probe is retried on quiche's FailedValidation
    // event: probing a path again while a probe is pending makes quiche fall back to the old
    // path if the second one fails.)
    sockets.retireWhenQuiet(old, opts.graceMs ?? QUIC_DEFAULTS.rebindGraceMs, {
      migrating: () => [...this.#conns].some((c) => c.migrating !== null),
      closing: () => this.#closing,
      done: () => {
        for (const c of this.#conns) c.abandonMigration();
      },
    });
    this.#sender.flush();
    return local;
  }

  /**
   * Closes every connection (application code 0 with `reason`: the close is sent to each peer),
   * then the socket. Pending `accept()` calls resolve with `null`, pending dials reject.
   */
  close(reason = "endpoint closed"): Promise<void> {
    if (this.#closing) return Promise.resolve();
    this.#closing = true;
    for (const c of this.#conns) {
      c.closeForEndpoint(reason);
      this.dirty(c);
    }
    // Send every CONNECTION_CLOSE, then finish: the socket closes, so there is nothing to drain.
    this.#sender.flush();
    for (const c of [...this.#conns]) c.checkClosed(true);
    for (const p of this.#pendingConnects.values()) p.reject(new QuicError("endpoint closed"));
    this.#pendingConnects.clear();
    this.#sender.stop();
    this.#sockets.close();
    const w = this.#acceptWaiter;
    this.#acceptWaiter = null;
    if (w) w(null);
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ ConnectionHost

  /** @internal */
  dirty(c: QuicConnection): void {
    this.#sender.dirty(c);
  }

  /** @internal */
  route(cid: Uint8Array, c: QuicConnection | null): void {
    this.#demux.route(cid, c);
  }

  /** @internal the TLS handshake finished: check the peer, then hand the connection out. */
  established(c: QuicConnection): void {
    this.#demux.handshakeOver(c);
    const check = this.#opts.checkPeer;
    const passed = () => {
      c.checked = true;
      this.#opened(c);
    };
    if (!check) {
      passed();
      return;
    }
    const refuse = (e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      c.reject(PEER_REJECTED, msg.slice(0, 200));
      const p = this.#pendingConnects.get(c);
      if (p) {
        this.#pendingConnects.delete(c);
        p.reject(new QuicError(`peer refused by checkPeer: ${msg}`, { cause: e }));
      }
    };
    try {
      const r = check(c.peerCertificates, c);
      if (r instanceof Promise) r.then(passed, refuse);
      else passed();
    } catch (e) {
      refuse(e);
    }
  }

  /** @internal */
  closed(c: QuicConnection): void {
    if (!c.isClient && !c.checked) {
      this.#handshakesFailed++;
      try {
        this.#opts.onHandshakeFailed?.(c, c.closeInfo!);
      } catch { /* a hook's failure must not stop the endpoint */ }
    }
    if (this.#conns.delete(c)) addTraffic(this.#closedTraffic, c);
    this.#demux.handshakeOver(c);
    this.#sender.forget(c);
    const p = this.#pendingConnects.get(c);
    if (p) {
      this.#pendingConnects.delete(c);
      p.reject(new ConnectionClosedError(c.closeInfo!));
    }
  }

  /** @internal */
  confirmed(c: QuicConnection): void {
    this.#opened(c);
  }

  // ------------------------------------------------------------------ life cycle

  /** The accepting side of a new connection (the demux admitted its Initial), or null. */
  #acceptConnection(
    scid: Uint8Array,
    odcid: Uint8Array | null,
    remote: HostPort,
  ): QuicConnection | null {
    const local = this.#sockets.local;
    let native;
    try {
      native = quiche.Connection.accept(scid, odcid, local, remote, this.#serverConfig!);
    } catch {
      return null;
    }
    const conn = new QuicConnection(this, native, false, local, remote, scid, this.#limits);
    this.#conns.add(conn);
    return conn;
  }

  /** After a flush sent for `c`: false once it is closed; a dial that failed rejects now. */
  #sent(c: QuicConnection): boolean {
    if (c.checkClosed()) return false;
    if (c.state === "closing") this.#failConnect(c);
    return true;
  }

  /** A dial that failed during the handshake rejects now, not after the draining period. */
  #failConnect(c: QuicConnection): void {
    const p = this.#pendingConnects.get(c);
    if (!p) return;
    this.#pendingConnects.delete(c);
    p.reject(new ConnectionClosedError(c.describeClose()));
  }

  #opened(c: QuicConnection): void {
    if (c.state !== "verifying" || !c.checked || !c.isConfirmed) return;
    c.open();
    const p = this.#pendingConnects.get(c);
    if (p) {
      this.#pendingConnects.delete(c);
      p.resolve(c);
      return;
    }
    this.#connectionsAccepted++;
    const w = this.#acceptWaiter;
    if (w) {
      this.#acceptWaiter = null;
      w(c);
    } else this.#accepted.push(c);
  }
}

/** Why a host name lookup failed, in words. */
function resolveProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOTFOUND" || code === "ENODATA" || code === "EAI_NONAME") {
    return "no such host name (check the spelling, or use an IP address)";
  }
  if (code === "EAI_AGAIN" || code === "ETIMEOUT") {
    return "the name servers did not answer (try again, or use an IP address)";
  }
  return (e as Error).message;
}

/** Adds `c`'s traffic counters to `t` (nothing when quiche cannot say: a connection torn down). */
function addTraffic(t: EndpointTraffic, c: QuicConnection): void {
  let s;
  try {
    s = c.native.stats();
  } catch {
    return;
  }
  t.bytesSent += s.sentBytes;
  t.bytesReceived += s.recvBytes;
  t.bytesLost += s.lostBytes;
  t.packetsLost += s.lost;
  t.packetsRetransmitted += s.retrans;
}
