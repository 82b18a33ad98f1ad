/**
 * Endpoint options, and what they become: a quiche configuration per role (TLS material, ALPN,
 * windows, limits, congestion control) and the per-connection limits. Every default is in
 * defaults.ts; bad options are a `QuicError` naming the option.
 */
import type { ConnectionLimits, QuicConnection } from "./connection.ts";
import { QUIC_DEFAULTS, TUNING } from "./defaults.ts";
import { type CloseInfo, QuicError } from "./errors.ts";
import { type Config, quiche } from "./native.ts";
import type { PacketHandler, UdpSocketFactory } from "./udp.ts";

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

/** Endpoint options; everything but `tls` has a default (`QUIC_DEFAULTS`, with the reasons). */
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
  /**
   * An incoming connection ended before its handshake finished (the peer's certificate refused
   * by TLS — `TLS alert unknown_ca` —, by `checkPeer`, or the peer went silent): for the log.
   */
  onHandshakeFailed?: (conn: QuicConnection, info: CloseInfo) => void;
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
  /** Incoming handshakes in flight from one IP address. Default 64 (a quarter of the slots). */
  maxHandshakesPerSource?: number;
  /** An incoming handshake not complete after this long is closed (its slot freed). Default 10 000 ms. */
  handshakeTimeoutMs?: number;
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

/** The options with every default filled in (the hooks stay optional). */
export type ResolvedOptions =
  & Required<
    Omit<QuicEndpointOptions, "checkPeer" | "socketFactory" | "onNonQuic" | "onHandshakeFailed">
  >
  & Pick<QuicEndpointOptions, "checkPeer" | "socketFactory" | "onNonQuic" | "onHandshakeFailed">;

/** `o` over `QUIC_DEFAULTS`. */
export function resolveOptions(o: QuicEndpointOptions): ResolvedOptions {
  const d = QUIC_DEFAULTS;
  return {
    tls: o.tls,
    host: o.host ?? d.host,
    port: o.port ?? d.port,
    alpn: o.alpn ?? [...d.alpn],
    acceptIncoming: o.acceptIncoming ?? d.acceptIncoming,
    requireClientCert: o.requireClientCert ?? d.requireClientCert,
    idleTimeoutMs: o.idleTimeoutMs ?? d.idleTimeoutMs,
    keepAliveMs: o.keepAliveMs ?? d.keepAliveMs,
    retry: o.retry ?? d.retry,
    retryTokenLifetimeMs: o.retryTokenLifetimeMs ?? d.retryTokenLifetimeMs,
    maxHandshakes: o.maxHandshakes ?? d.maxHandshakes,
    maxHandshakesPerSource: o.maxHandshakesPerSource ?? d.maxHandshakesPerSource,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    maxConnections: o.maxConnections ?? d.maxConnections,
    maxUdpPayload: o.maxUdpPayload ?? d.maxUdpPayload,
    maxStreams: o.maxStreams ?? d.maxStreams,
    streamWindow: o.streamWindow ?? d.streamWindow,
    connectionWindow: o.connectionWindow ?? d.connectionWindow,
    readBufferBytes: o.readBufferBytes ?? d.readBufferBytes,
    writeBufferBytes: o.writeBufferBytes ?? d.writeBufferBytes,
    datagramQueue: o.datagramQueue ?? d.datagramQueue,
    congestionControl: o.congestionControl ?? d.congestionControl,
    checkPeer: o.checkPeer,
    socketFactory: o.socketFactory,
    onNonQuic: o.onNonQuic,
    onHandshakeFailed: o.onHandshakeFailed,
  };
}

/** What each connection is held to. */
export function connectionLimits(o: ResolvedOptions): ConnectionLimits {
  return {
    readBufferBytes: o.readBufferBytes,
    writeBufferBytes: o.writeBufferBytes,
    datagramQueue: o.datagramQueue,
    keepAliveMs: o.keepAliveMs,
  };
}

const toBytes = (v: string | Uint8Array) => typeof v === "string" ? new TextEncoder().encode(v) : v;

/** The quiche configuration of one role (`server`: accepting). Throws `QuicError` naming the option. */
export function quicheConfig(o: ResolvedOptions, server: boolean): Config {
  const tls = o.tls;
  if (!tls || !tls.ca) {
    throw new QuicError("tls.ca is required: the CA that peers' certificates chain to");
  }
  if (!tls.cert !== !tls.key) {
    throw new QuicError("tls.cert and tls.key go together: give both or neither");
  }
  if (!tls.cert && (server || o.acceptIncoming)) {
    throw new QuicError(
      "tls.cert and tls.key are required for an endpoint that accepts connections",
    );
  }
  let cfg: Config;
  try {
    cfg = quiche.Config.withBoringSslCtx(
      server ? o.requireClientCert : true,
      false,
      toBytes(tls.ca),
      tls.key ? [toBytes(tls.key)] : null,
      tls.cert ? [toBytes(tls.cert)] : null,
      TUNING.sigalgs,
    );
  } catch (e) {
    throw new QuicError(
      `cannot load TLS material (tls.ca, tls.cert, tls.key must be PEM; the key must match the certificate): ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
  const alpn = o.alpn;
  if (alpn.length === 0 || alpn.some((a) => a.length === 0 || a.length > 255)) {
    throw new QuicError("alpn: give one or more protocol names of 1 to 255 bytes");
  }
  const payload = o.maxUdpPayload;
  if (payload < 1200 || payload > 65527) {
    throw new QuicError("maxUdpPayload must be between 1200 and 65527");
  }
  cfg.setApplicationProtos(alpn);
  cfg.setMaxIdleTimeout(o.idleTimeoutMs);
  cfg.setMaxRecvUdpPayloadSize(payload);
  cfg.setMaxSendUdpPayloadSize(payload);
  cfg.setInitialMaxData(o.connectionWindow);
  cfg.setInitialMaxStreamDataBidiLocal(o.streamWindow);
  cfg.setInitialMaxStreamDataBidiRemote(o.streamWindow);
  cfg.setInitialMaxStreamDataUni(o.streamWindow);
  cfg.setInitialMaxStreamsBidi(o.maxStreams);
  cfg.setInitialMaxStreamsUni(o.maxStreams);
  cfg.setMaxStreamWindow(Math.max(o.streamWindow, TUNING.maxStreamWindow));
  cfg.setMaxConnectionWindow(Math.max(o.connectionWindow, TUNING.maxConnectionWindow));
  cfg.setActiveConnectionIdLimit(TUNING.activeConnectionIdLimit);
  cfg.setDisableActiveMigration(false);
  cfg.enableDgram(true, o.datagramQueue, TUNING.datagramSendQueue);
  cfg.setCcAlgorithmName(o.congestionControl);
  cfg.enablePacing(false);
  return cfg;
}
