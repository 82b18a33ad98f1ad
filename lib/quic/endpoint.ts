/**
 * A QUIC endpoint: one UDP socket that both dials and accepts, the connection table, stateless
 * retry, version negotiation, limits, the timer scheduler, the per-tick flush, and the demux hook
 * for non-QUIC packets (STUN) sharing the socket.
 */
import { randomBytes } from "node:crypto";
import { setImmediate } from "node:timers";
import { type ConnectionHost, type ConnectionLimits, QuicConnection } from "./connection.ts";
import { ConnectionClosedError, QuicError } from "./errors.ts";
import { type Config, type HostPort, quiche } from "./native.ts";
import { RetryTokens } from "./retry.ts";
import { RecvSlab } from "./stream.ts";
import { TimerHeap } from "./timers.ts";
import { openUdpSocket, type PacketHandler, type UdpSocket, type UdpSocketFactory } from "./udp.ts";

/** TLS material: PEM text or bytes. Every endpoint needs a certificate: QUIC runs mutual TLS. */
export interface TlsOptions {
  /** CA certificate(s) that peers' certificates must chain to (PEM, several may be concatenated). */
  ca: string | Uint8Array;
  /**
   * This endpoint's certificate chain (PEM, leaf first). Only a dial-only endpoint
   * (`acceptIncoming: false`) may go without, and servers requiring client certificates refuse it.
   */
  cert?: string | Uint8Array;
  /** This endpoint's private key (PEM, PKCS#8), required with `cert`. */
  key?: string | Uint8Array;
}

/** Endpoint options; everything but `tls` has a default. */
export interface QuicEndpointOptions {
  tls: TlsOptions;
  /** Address to bind. Default `0.0.0.0`; use `::` for IPv4+IPv6, `127.0.0.1` for tests. */
  host?: string;
  /** UDP port; 0 (default) lets the kernel choose. */
  port?: number;
  /** Application protocols offered and accepted (ALPN). Default `["macula/1"]`. */
  alpn?: string[];
  /** Accept connections from peers. Default true (mesh nodes both dial and accept). */
  acceptIncoming?: boolean;
  /** Require a client certificate from peers that dial us. Default true (mutual TLS). */
  requireClientCert?: boolean;
  /**
   * Checks a peer after TLS verified its chain and before the connection is handed out; throw
   * (or reject) to refuse the peer, whose connection is closed with code `PEER_REJECTED` and the
   * error's message as reason.
   */
  checkPeer?: (chain: Uint8Array[], conn: QuicConnection) => void | Promise<void>;
  /** Close a connection after this long without packets from the peer. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /** Send a PING after this long without packets from the peer; 0 disables. Default 10 000 ms. */
  keepAliveMs?: number;
  /** Stateless retry (address validation) before accepting a connection. Default true. */
  retry?: boolean;
  /** How long a retry token stays valid. Default 10 000 ms. */
  retryTokenLifetimeMs?: number;
  /** Incoming handshakes in flight at once; more are dropped and counted. Default 256. */
  maxHandshakes?: number;
  /** Connections at once (both roles); incoming ones past this are dropped and counted. Default 10 000. */
  maxConnections?: number;
  /** Largest UDP payload sent or accepted. Default 1 350 bytes (safe under tunnels and PPPoE). */
  maxUdpPayload?: number;
  /** Streams the peer may open concurrently (each kind). Default 1 024. */
  maxStreams?: number;
  /** Initial per-stream flow-control window. Default 1 MiB (auto-tuned up to 16 MiB). */
  streamWindow?: number;
  /** Initial per-connection flow-control window. Default 16 MiB (auto-tuned up to 24 MiB). */
  connectionWindow?: number;
  /** Bytes buffered for a slow stream reader before flow control pushes back. Default 1 MiB. */
  readBufferBytes?: number;
  /** Bytes a stream writer may queue before `write()` waits. Default 256 KiB. */
  writeBufferBytes?: number;
  /** Received datagrams kept for the application; the oldest is dropped (and counted) past it. Default 1 024. */
  datagramQueue?: number;
  /**
   * Congestion control. Default `bbr`: measured here, quiche's CUBIC and Reno fall into long
   * exponential PTO backoff under random loss (4 MiB at 5% loss each way: CUBIC 7.7 s, BBR
   * 0.19 s; at 20% CUBIC stalls past 30 s, BBR 0.87 s). See docs/quic.md.
   */
  congestionControl?: "cubic" | "reno" | "bbr";
  /** The socket adapter (tests wrap it). Default: `Bun.udpSocket` on Bun, `node:dgram` elsewhere. */
  socketFactory?: UdpSocketFactory;
  /** Handler for packets that are not QUIC (RFC 7983/9443: first byte 0–63, e.g. STUN 0–3). */
  onNonQuic?: PacketHandler;
}

/** Counters of an endpoint, readable at any time. */
export interface EndpointStats {
  packetsReceived: number;
  packetsSent: number;
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
  retriesSent: number;
  versionNegotiationsSent: number;
  handshakesInFlight: number;
  connections: number;
  connectionsAccepted: number;
  connectionsDialed: number;
  /** Datagrams the socket could not hand to the kernel (send buffer full past our bound). */
  socketSendDropped: number;
  /** Sockets left by `rebind` and still open for packets in flight to them. */
  socketsRetiring: number;
}

/** Application close code used when `checkPeer` refuses a peer. */
export const PEER_REJECTED = 0x1;

const SIGALGS = "ed25519:ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:rsa_pss_rsae_sha256:" +
  "rsa_pss_rsae_sha384:rsa_pkcs1_sha256";
const CID_LEN = 20;
const SLOTS = 64;
/** Packets one connection may emit per flush before others get a turn. */
const SEND_BURST = 256;
const TYPE_INITIAL = 0;
/** A flush less than this long ago (ms) means packets are streaming in: batch per turn. */
const BUSY_MS = 0.05;
/** Microtask hops to wait for the application's answer before sending (see `#flushAfterApp`). */
const APP_HOPS = 16;
/** How long a lone ACK may wait for data to ride with (see `#holdAck`). */
const ACK_HOLD_MS = 1;

/**
 * The host of tunnel addresses (`openTunnel`): in the IPv6 discard-only prefix (RFC 6666), so a
 * packet that ever reached the socket by mistake would go nowhere. The port tells tunnels apart.
 */
export const TUNNEL_HOST = "100::1";

const toBytes = (v: string | Uint8Array) => typeof v === "string" ? new TextEncoder().encode(v) : v;

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

/** A QUIC endpoint on one UDP socket. Create with `QuicEndpoint.bind`. */
export class QuicEndpoint implements ConnectionHost, AsyncIterable<QuicConnection> {
  readonly slab = new RecvSlab();
  #socket!: UdpSocket;
  /** Sockets left by `rebind`, kept open briefly so packets already in flight still land. */
  #retired: UdpSocket[] = [];
  #retiredSent = 0;
  #local!: HostPort;
  readonly #opts: QuicEndpointOptions;
  readonly #limits: ConnectionLimits;
  readonly #serverConfig: Config | null;
  readonly #clientConfig: Config;
  readonly #tokens: RetryTokens;
  readonly #table = new Map<string, QuicConnection>();
  readonly #conns = new Set<QuicConnection>();
  readonly #timers: TimerHeap<QuicConnection>;
  readonly #pendingConnects = new Map<
    QuicConnection,
    { resolve: (c: QuicConnection) => void; reject: (e: Error) => void }
  >();
  readonly #handshaking = new Set<QuicConnection>();
  #dirty: QuicConnection[] = [];
  #flushScheduled = false;
  /** The connection of the last short-header packet, and its connection id (fast path). */
  #lastConn: QuicConnection | null = null;
  readonly #lastCid = new Uint8Array(CID_LEN);
  #lastFlushAt = 0;
  readonly #slots: Uint8Array[];
  readonly #out = new Uint8Array(1500);
  #accepted: QuicConnection[] = [];
  #acceptWaiter: ((c: QuicConnection | null) => void) | null = null;
  #closing = false;
  #onNonQuic: PacketHandler | null;
  readonly #stats: EndpointStats = {
    packetsReceived: 0,
    packetsSent: 0,
    droppedInvalid: 0,
    droppedUnknownConnection: 0,
    droppedNotQuic: 0,
    droppedRefused: 0,
    droppedBadToken: 0,
    retriesSent: 0,
    versionNegotiationsSent: 0,
    handshakesInFlight: 0,
    connections: 0,
    connectionsAccepted: 0,
    connectionsDialed: 0,
    socketSendDropped: 0,
    socketsRetiring: 0,
  };
  readonly #flushBound = () => this.#flush();
  #held: QuicConnection[] = [];
  /** Tunnels by port of their address on `TUNNEL_HOST`: where their packets go instead. */
  readonly #tunnels = new Map<number, (packet: Uint8Array) => void>();
  #nextTunnel = 1;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(opts: QuicEndpointOptions) {
    this.#opts = opts;
    this.#limits = {
      readBufferBytes: opts.readBufferBytes ?? 1024 * 1024,
      writeBufferBytes: opts.writeBufferBytes ?? 256 * 1024,
      datagramQueue: opts.datagramQueue ?? 1024,
      keepAliveMs: opts.keepAliveMs ?? 10_000,
    };
    this.#clientConfig = this.#config(false);
    this.#serverConfig = opts.acceptIncoming === false ? null : this.#config(true);
    this.#tokens = new RetryTokens(opts.retryTokenLifetimeMs ?? 10_000);
    this.#timers = new TimerHeap((due) => this.#onTimers(due));
    const slotSize = Math.max(1500, opts.maxUdpPayload ?? 1350);
    const arena = new Uint8Array(slotSize * SLOTS);
    this.#slots = Array.from(
      { length: SLOTS },
      (_, i) => arena.subarray(i * slotSize, (i + 1) * slotSize),
    );
    this.#onNonQuic = opts.onNonQuic ?? null;
  }

  /** Opens the socket and starts the endpoint. Rejects with a clear error for bad options. */
  static async bind(opts: QuicEndpointOptions): Promise<QuicEndpoint> {
    const ep = new QuicEndpoint(opts);
    const host = opts.host ?? "0.0.0.0";
    const factory = opts.socketFactory ?? openUdpSocket;
    try {
      ep.#socket = await ep.#open(factory, host, opts.port ?? 0);
    } catch (e) {
      throw new QuicError(`cannot bind UDP ${host}:${opts.port ?? 0}: ${(e as Error).message}`);
    }
    ep.#local = { host, port: ep.#socket.port };
    return ep;
  }

  /** Opens a socket whose packets are tagged with its own local address. */
  async #open(factory: UdpSocketFactory, host: string, port: number): Promise<UdpSocket> {
    const local: HostPort = { host, port };
    const sock = await factory({
      host,
      port,
      onPacket: (d, h, p) => this.#onPacket(d, h, p, local),
    });
    local.port = sock.port;
    return sock;
  }

  /** The bound address (the port the kernel chose when 0 was asked). */
  get address(): HostPort {
    return this.#local;
  }

  /** Counters: packets, drops by reason, retries, handshakes and connections. */
  get stats(): EndpointStats {
    this.#stats.connections = this.#conns.size;
    this.#stats.handshakesInFlight = this.#handshaking.size;
    this.#stats.packetsSent = this.#socket.stats.sent + this.#retiredSent +
      this.#retired.reduce((n, s) => n + s.stats.sent, 0);
    this.#stats.socketSendDropped = this.#socket.stats.sendDropped;
    this.#stats.socketsRetiring = this.#retired.length;
    return { ...this.#stats };
  }

  /** Connections currently known (any state). */
  get connections(): QuicConnection[] {
    return [...this.#conns];
  }

  // ------------------------------------------------------------------ public API

  /**
   * Dials `to` and resolves with the connection once TLS and `checkPeer` passed. Rejects with
   * `ConnectionClosedError` saying why otherwise (for example `TLS alert unknown_ca`, or an idle
   * timeout when nothing answers).
   */
  connect(to: HostPort, opts: { serverName?: string } = {}): Promise<QuicConnection> {
    if (this.#closing) return Promise.reject(new QuicError("endpoint is closed"));
    if (this.#conns.size >= (this.#opts.maxConnections ?? 10_000)) {
      return Promise.reject(new QuicError("connection limit reached"));
    }
    const scid = randomBytes(CID_LEN);
    const remote = { host: this.#peerHost(to.host), port: to.port };
    let native;
    try {
      native = quiche.Connection.connect(
        opts.serverName ?? null,
        scid,
        this.#local,
        remote,
        this.#clientConfig,
      );
    } catch (e) {
      return Promise.reject(
        new QuicError(
          `cannot start a connection to ${to.host}:${to.port}: ${(e as Error).message}`,
        ),
      );
    }
    const conn = new QuicConnection(this, native, true, this.#local, remote, scid, this.#limits);
    this.#conns.add(conn);
    this.#stats.connectionsDialed++;
    const p = new Promise<QuicConnection>((resolve, reject) =>
      this.#pendingConnects.set(conn, { resolve, reject })
    );
    this.dirty(conn);
    return p;
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
    this.#onNonQuic = handler;
  }

  /** Sends a raw UDP datagram from the endpoint's socket (STUN, hole-punching probes). */
  sendRaw(data: Uint8Array, host: string, port: number): void {
    this.#socket.send(data, port, this.#peerHost(host));
    this.#socket.flush();
  }

  /**
   * Opens a tunnel: an address (on `TUNNEL_HOST`) that connections can dial or be accepted from,
   * whose packets go to `send` instead of the socket, and whose incoming packets the owner feeds
   * with `tunnelReceive`. A relay carries QUIC this way: the connection inside stays end to end
   * (its own TLS), the relay only forwards packets. `send` must copy what it keeps.
   */
  openTunnel(send: (packet: Uint8Array) => void): HostPort {
    if (this.#tunnels.size >= 65_535) throw new QuicError("tunnel limit reached (65 535)");
    let port = this.#nextTunnel;
    while (this.#tunnels.has(port)) port = port === 65_535 ? 1 : port + 1;
    this.#nextTunnel = port === 65_535 ? 1 : port + 1;
    this.#tunnels.set(port, send);
    return { host: TUNNEL_HOST, port };
  }

  /** A packet that came through the tunnel at `addr`: handled as if the socket received it. */
  tunnelReceive(addr: HostPort, packet: Uint8Array): void {
    if (this.#closing || !this.#tunnels.has(addr.port)) return;
    this.#onPacket(packet, TUNNEL_HOST, addr.port, this.#local);
  }

  /** Closes a tunnel: its packets are dropped from now on (its connections time out or close). */
  closeTunnel(addr: HostPort): void {
    this.#tunnels.delete(addr.port);
  }

  /** Sends one datagram now, from the socket or into a tunnel. */
  #sendNow(data: Uint8Array, port: number, host: string): void {
    if (host === TUNNEL_HOST) return this.#tunnels.get(port)?.(data);
    this.#socket.send(data, port, host);
    this.#socket.flush();
  }

  /** Sets the IP TTL of packets sent from now on. */
  setTTL(ttl: number): void {
    this.#socket.setTTL(ttl);
  }

  /**
   * Moves the endpoint to a new UDP socket (a new local port; same host unless given). Connections
   * this endpoint dialed migrate to it and keep their streams; connections it accepted cannot
   * migrate (QUIC servers keep their address) and are closed with reason "endpoint rebound".
   * The old socket stays open until the migrations finished and it carried nothing for `graceMs`
   * (default 2 s; 30 s at most), so packets in flight on the old path still get through.
   */
  async rebind(opts: { host?: string; port?: number; graceMs?: number } = {}): Promise<HostPort> {
    if (this.#closing) throw new QuicError("endpoint is closed");
    const host = opts.host ?? this.#local.host;
    const old = this.#socket;
    const fresh = await this.#open(this.#opts.socketFactory ?? openUdpSocket, host, opts.port ?? 0);
    for (const c of this.#conns) {
      if (!c.isClient) {
        c.closeForEndpoint("endpoint rebound");
        this.dirty(c);
      }
    }
    this.#flush();
    this.#socket = fresh;
    this.#local = { host, port: fresh.port };
    for (const c of this.#conns) {
      if (c.isClient && c.state !== "closed") {
        try {
          c.migrateTo(this.#local);
        } catch (e) {
          c.close(0x2, `migration failed: ${(e as Error).message}`);
        }
      }
    }
    this.#retired.push(old);
    const graceMs = opts.graceMs ?? 2000;
    // Every 500 ms: close the old socket once no migration is pending and it has carried nothing
    // for `graceMs` (quiche recovers packets in flight on the old path there, per path); 30 s at
    // most, when unfinished migrations are given up. (A lost probe is retried on quiche's
    // FailedValidation event: probing a path again while a probe is pending makes quiche fall
    // back to the old path if the second one fails.)
    const started = Date.now();
    let lastUse = started;
    let lastCount = old.stats.sent + old.stats.received;
    const watch = setInterval(() => {
      const now = Date.now();
      const migrating = [...this.#conns].some((c) => c.migrating !== null);
      const count = old.stats.sent + old.stats.received;
      if (count !== lastCount) {
        lastCount = count;
        lastUse = now;
      }
      const idle = !migrating && now - lastUse >= graceMs;
      if (idle || this.#closing || now - started >= 30_000) {
        clearInterval(watch);
        for (const c of this.#conns) c.abandonMigration();
        this.#retire(old);
      }
    }, 500);
    watch.unref?.();
    this.#flush();
    return this.#local;
  }

  #retire(sock: UdpSocket): void {
    const i = this.#retired.indexOf(sock);
    if (i < 0) return;
    this.#retired.splice(i, 1);
    this.#retiredSent += sock.stats.sent;
    sock.close();
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
    this.#flush();
    for (const c of [...this.#conns]) c.checkClosed(true);
    for (const p of this.#pendingConnects.values()) p.reject(new QuicError("endpoint closed"));
    this.#pendingConnects.clear();
    this.#timers.stop();
    clearTimeout(this.#ackTimer);
    this.#socket.close();
    for (const r of [...this.#retired]) this.#retire(r);
    const w = this.#acceptWaiter;
    this.#acceptWaiter = null;
    if (w) w(null);
    return Promise.resolve();
  }

  // ------------------------------------------------------------------ ConnectionHost

  /** @internal */
  dirty(c: QuicConnection): void {
    if (!c.inDirty) {
      c.inDirty = true;
      this.#dirty.push(c);
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Idle (nothing flushed lately): flush as soon as the current task is done, for latency.
      // Busy (packets streaming in): flush once per event-loop turn, so a burst is batched.
      if (performance.now() - this.#lastFlushAt < BUSY_MS) setImmediate(this.#flushBound);
      else queueMicrotask(this.#flushBound);
    }
  }

  /**
   * Flushes after the application's pending microtasks ran (a short chain of microtask hops), so
   * an answer to what was just delivered joins the ACK in one packet.
   */
  #flushAfterApp(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    let hops = APP_HOPS;
    const hop = () => {
      if (--hops > 0) queueMicrotask(hop);
      else this.#flush();
    };
    queueMicrotask(hop);
  }

  /** @internal */
  route(cid: Uint8Array, c: QuicConnection | null): void {
    const k = cidKey(cid, 0, cid.length);
    if (c) this.#table.set(k, c);
    else {
      this.#table.delete(k);
      this.#lastConn = null;
    }
  }

  /** @internal the TLS handshake finished: check the peer, then hand the connection out. */
  established(c: QuicConnection): void {
    this.#handshaking.delete(c);
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
        p.reject(new QuicError(`peer refused by checkPeer: ${msg}`));
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
    this.#conns.delete(c);
    this.#handshaking.delete(c);
    this.#timers.set(c, null);
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
    this.#stats.connectionsAccepted++;
    const w = this.#acceptWaiter;
    if (w) {
      this.#acceptWaiter = null;
      w(c);
    } else this.#accepted.push(c);
  }

  // ------------------------------------------------------------------ packets in

  #onPacket(data: Uint8Array, host: string, port: number, local: HostPort): void {
    this.#stats.packetsReceived++;
    const b0 = data[0];
    if (b0 === undefined) {
      this.#stats.droppedInvalid++;
      return;
    }
    if ((b0 & 0x40) === 0) {
      // Not QUIC (RFC 9443 §2): STUN and friends.
      const h = this.#onNonQuic;
      if (h) {
        try {
          h(data, host, port);
        } catch {
          // a handler's bug must not take the endpoint down
        }
      } else this.#stats.droppedNotQuic++;
      return;
    }
    let key: string;
    if (b0 & 0x80) {
      const len = data[5];
      if (data.length < 7 || len === undefined || len > 20 || data.length < 6 + len) {
        this.#stats.droppedInvalid++;
        return;
      }
      key = cidKey(data, 6, 6 + len);
    } else {
      if (data.length < 1 + CID_LEN) {
        this.#stats.droppedInvalid++;
        return;
      }
      // Fast path: most packets belong to the connection the previous one did.
      const last = this.#lastConn;
      if (last !== null && sameCid(data, this.#lastCid)) {
        const r = last.remote;
        last.recv(data, r.port === port && r.host === host ? r : { host, port }, local);
        this.dirty(last);
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
      this.dirty(conn);
      return;
    }
    if (b0 & 0x80) this.#newConnection(data, host, port);
    else this.#stats.droppedUnknownConnection++;
  }

  #newConnection(data: Uint8Array, host: string, port: number): void {
    let hdr;
    try {
      hdr = quiche.Header.fromSlice(data, CID_LEN);
    } catch {
      this.#stats.droppedInvalid++;
      return;
    }
    if (!quiche.versionIsSupported(hdr.version)) {
      if (data.length < 1200) {
        this.#stats.droppedInvalid++;
        return;
      }
      try {
        const n = quiche.negotiateVersion(hdr.scid, hdr.dcid, this.#out);
        this.#sendNow(this.#out.subarray(0, n), port, host);
        this.#stats.versionNegotiationsSent++;
      } catch {
        this.#stats.droppedInvalid++;
      }
      return;
    }
    if (hdr.ty !== TYPE_INITIAL) {
      this.#stats.droppedUnknownConnection++;
      return;
    }
    if (data.length < 1200) {
      this.#stats.droppedInvalid++;
      return;
    }
    if (
      this.#serverConfig === null || this.#closing ||
      this.#handshaking.size >= (this.#opts.maxHandshakes ?? 256) ||
      this.#conns.size >= (this.#opts.maxConnections ?? 10_000)
    ) {
      this.#stats.droppedRefused++;
      return;
    }
    let scid: Uint8Array;
    let odcid: Uint8Array | null = null;
    if (this.#opts.retry !== false) {
      const token = hdr.token;
      if (!token || token.length === 0) {
        const newScid = randomBytes(CID_LEN);
        const tok = this.#tokens.issue(hdr.dcid, host, port);
        try {
          const n = quiche.retry(hdr.scid, hdr.dcid, newScid, tok, hdr.version, this.#out);
          this.#sendNow(this.#out.subarray(0, n), port, host);
          this.#stats.retriesSent++;
        } catch {
          this.#stats.droppedInvalid++;
        }
        return;
      }
      odcid = this.#tokens.check(token, host, port);
      if (odcid === null || hdr.dcid.length !== CID_LEN) {
        this.#stats.droppedBadToken++;
        return;
      }
      scid = hdr.dcid;
    } else {
      scid = randomBytes(CID_LEN);
    }
    const remote = { host, port };
    let native;
    try {
      native = quiche.Connection.accept(scid, odcid, this.#local, remote, this.#serverConfig);
    } catch {
      this.#stats.droppedInvalid++;
      return;
    }
    const conn = new QuicConnection(this, native, false, this.#local, remote, scid, this.#limits);
    // Until the client learns our cid, its packets carry the dcid it chose.
    if (odcid === null) conn.addRoute(hdr.dcid);
    this.#conns.add(conn);
    this.#handshaking.add(conn);
    conn.recv(data, remote, this.#local);
    this.dirty(conn);
  }

  // ------------------------------------------------------------------ packets out, timers

  #flush(): void {
    this.#flushScheduled = false;
    this.#lastFlushAt = performance.now();
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    this.#dirty = [];
    let slot = 0;
    const sock = this.#socket;
    const again: QuicConnection[] = [];
    let deferredOnly = true;
    const sent: QuicConnection[] = [];
    for (const c of dirty) {
      c.inDirty = false;
      const woke = c.service();
      if (woke && !c.deferred) {
        // Data reached the application: let its microtasks run first (#flushAfterApp), so an
        // immediate answer leaves with the ACK in one packet instead of a lone ACK now.
        c.deferred = true;
        c.appWrote = false;
        again.push(c);
        continue;
      }
      if (
        c.deferred && !c.appWrote && !c.ackDue && c.recvSinceSend === 1 && c.state === "open" &&
        c.probing.length === 0
      ) {
        // The application did not answer: all quiche has to send is the ACK of one packet.
        c.deferred = false;
        this.#holdAck(c);
        continue;
      }
      c.deferred = false;
      c.ackDue = false;
      c.ackHeld = false;
      c.recvSinceSend = 0;
      sent.push(c);
      c.pushWrites();
      const n = c.native;
      if (c.probing.length > 0) slot = this.#sendProbes(c, slot);
      let i = 0;
      for (; i < SEND_BURST; i++) {
        if (slot === SLOTS) {
          sock.flush();
          slot = 0;
        }
        const buf = this.#slots[slot]!;
        let r;
        try {
          r = n.send(buf);
        } catch {
          break;
        }
        if (r === null) break;
        if (this.#emit(buf, r[0], r[1].from, r[1].to)) slot++;
      }
      if (i === SEND_BURST) {
        again.push(c);
        deferredOnly = false;
      }
    }
    sock.flush();
    const now = Date.now();
    for (const c of sent) {
      if (c.checkClosed()) continue;
      if (c.state === "closing") this.#failConnect(c);
      this.#arm(c, now);
    }
    if (again.length > 0) {
      for (const c of again) {
        if (!c.inDirty) {
          c.inDirty = true;
          this.#dirty.push(c);
        }
      }
      if (deferredOnly) this.#flushAfterApp();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flushBound);
      }
    }
  }

  /**
   * Holds back the ACK of a single packet for up to `ACK_HOLD_MS` (RFC 9000 §13.2.1 allows up to
   * max_ack_delay, 25 ms), so it rides with the application's next data to that peer instead of
   * waking the peer with a packet of its own. A relay (a node passing a request on) answers on
   * another connection, later: without the hold every hop costs a lone ACK. A second packet
   * from the peer ends the hold at once (§13.2.2: acknowledge every second packet).
   */
  #holdAck(c: QuicConnection): void {
    c.ackHeld = true;
    this.#held.push(c);
    this.#ackTimer ??= setTimeout(this.#releaseAcks, ACK_HOLD_MS);
  }

  readonly #releaseAcks = () => {
    this.#ackTimer = undefined;
    const held = this.#held;
    this.#held = [];
    for (const c of held) {
      if (!c.ackHeld) continue;
      c.ackHeld = false;
      c.ackDue = true;
      this.dirty(c);
    }
  };

  /**
   * Sends a packet quiche built. True when it went into the current batch (its slot is used);
   * packets for a socket left by `rebind` go out at once, and those for a socket already closed
   * are dropped (the path is gone).
   */
  #emit(buf: Uint8Array, len: number, from: HostPort, to: HostPort): boolean {
    if (to.host === TUNNEL_HOST) {
      this.#tunnels.get(to.port)?.(buf.subarray(0, len));
      return false;
    }
    if (from.port === this.#local.port) {
      this.#socket.send(buf.subarray(0, len), to.port, to.host);
      return true;
    }
    const old = this.#retired.find((s) => s.port === from.port);
    if (old) {
      old.send(buf.subarray(0, len), to.port, to.host);
      old.flush();
    }
    return false;
  }

  /**
   * Packets for paths other than the active one go first: probes of a new path, and loss
   * recovery of packets still in flight on the old one. `send()` serves only the active path
   * while it has data, which would starve both.
   */
  #sendProbes(c: QuicConnection, slot: number): number {
    const n = c.native;
    for (const [from, to] of c.probing) {
      for (let i = 0; i < 16; i++) {
        if (slot === SLOTS) {
          this.#socket.flush();
          slot = 0;
        }
        const buf = this.#slots[slot]!;
        let r;
        try {
          r = n.sendOnPath(buf, from, to);
        } catch {
          break;
        }
        if (r === null) break;
        if (this.#emit(buf, r[0], r[1].from, r[1].to)) slot++;
      }
    }
    return slot;
  }

  #arm(c: QuicConnection, now: number): void {
    const t = c.native.timeout();
    let at = t === null ? Infinity : now + t;
    if (c.keepAliveAt > 0 && c.keepAliveAt < at) at = c.keepAliveAt;
    this.#timers.set(c, at === Infinity ? null : at);
  }

  #onTimers(due: QuicConnection[]): void {
    const now = Date.now();
    for (const c of due) {
      c.native.onTimeout();
      c.timerFired();
      if (c.keepAliveAt > 0 && now >= c.keepAliveAt && c.isOpen) {
        c.native.sendAckEliciting();
        c.keepAliveAt = now + this.#limits.keepAliveMs;
      }
      this.dirty(c);
    }
    this.#flush();
  }

  // ------------------------------------------------------------------ helpers

  /** Maps an IPv4 peer to its IPv4-mapped form when the socket is IPv6 (dual stack). */
  #peerHost(host: string): string {
    const v6 = this.#local !== undefined && this.#local.host.includes(":");
    return v6 && !host.includes(":") ? `::ffff:${host}` : host;
  }

  #config(server: boolean): Config {
    const o = this.#opts;
    const tls = o.tls;
    if (!tls || !tls.ca) {
      throw new QuicError("tls.ca is required: the CA that peers' certificates chain to");
    }
    if (!tls.cert !== !tls.key) {
      throw new QuicError("tls.cert and tls.key go together: give both or neither");
    }
    if (!tls.cert && (server || o.acceptIncoming !== false)) {
      throw new QuicError(
        "tls.cert and tls.key are required for an endpoint that accepts connections",
      );
    }
    let cfg: Config;
    try {
      cfg = quiche.Config.withBoringSslCtx(
        server ? o.requireClientCert !== false : true,
        false,
        toBytes(tls.ca),
        tls.key ? [toBytes(tls.key)] : null,
        tls.cert ? [toBytes(tls.cert)] : null,
        SIGALGS,
      );
    } catch (e) {
      throw new QuicError(
        `cannot load TLS material (tls.ca, tls.cert, tls.key must be PEM; the key must match the certificate): ${
          (e as Error).message
        }`,
      );
    }
    const alpn = o.alpn ?? ["macula/1"];
    if (alpn.length === 0 || alpn.some((a) => a.length === 0 || a.length > 255)) {
      throw new QuicError("alpn: give one or more protocol names of 1 to 255 bytes");
    }
    const payload = o.maxUdpPayload ?? 1350;
    if (payload < 1200 || payload > 65527) {
      throw new QuicError("maxUdpPayload must be between 1200 and 65527");
    }
    const streamWindow = o.streamWindow ?? 1024 * 1024;
    const connWindow = o.connectionWindow ?? 16 * 1024 * 1024;
    const maxStreams = o.maxStreams ?? 1024;
    cfg.setApplicationProtos(alpn);
    cfg.setMaxIdleTimeout(o.idleTimeoutMs ?? 30_000);
    cfg.setMaxRecvUdpPayloadSize(payload);
    cfg.setMaxSendUdpPayloadSize(payload);
    cfg.setInitialMaxData(connWindow);
    cfg.setInitialMaxStreamDataBidiLocal(streamWindow);
    cfg.setInitialMaxStreamDataBidiRemote(streamWindow);
    cfg.setInitialMaxStreamDataUni(streamWindow);
    cfg.setInitialMaxStreamsBidi(maxStreams);
    cfg.setInitialMaxStreamsUni(maxStreams);
    cfg.setMaxStreamWindow(Math.max(streamWindow, 16 * 1024 * 1024));
    cfg.setMaxConnectionWindow(Math.max(connWindow, 24 * 1024 * 1024));
    cfg.setActiveConnectionIdLimit(4);
    cfg.setDisableActiveMigration(false);
    cfg.enableDgram(true, o.datagramQueue ?? 1024, 1024);
    cfg.setCcAlgorithmName(o.congestionControl ?? "bbr");
    cfg.enablePacing(false);
    return cfg;
  }
}
