/**
 * The QUIC layer's defaults, in one place, each with its reason (as memberlist's
 * DefaultLANConfig does). `QUIC_DEFAULTS` fills in what the caller did not say: every
 * `QuicEndpointOptions` field, `rebind`'s grace and `readAll`'s limit. `TUNING` holds the
 * engine's fixed constants, which are not options. docs/quic.md has the measurements behind them.
 */

/** The default of every option and argument of lib/quic (`QuicEndpointOptions` first). */
export const QUIC_DEFAULTS = {
  /** Any IPv4 interface: a mesh node is reached from the LAN; tests bind 127.0.0.1. */
  host: "0.0.0.0",
  /** The kernel picks a port: a dialer needs no fixed one. */
  port: 0,
  /** Macula's protocol, version 1: peers that speak something else fail the handshake at once. */
  alpn: ["macula/1"] as readonly string[],
  /** Nodes both dial and accept. */
  acceptIncoming: true,
  /** Mutual TLS: a peer without a certificate of the realm is no peer. */
  requireClientCert: true,
  /** A peer silent this long is gone: three missed keep-alives. */
  idleTimeoutMs: 30_000,
  /** Keeps NAT mappings open (most NATs drop idle UDP mappings after 30-60 s). */
  keepAliveMs: 10_000,
  /** Stateless retry: a spoofed source address cannot make us hold handshake state. */
  retry: true,
  /** A retry token is used within one round trip; 10 s covers a slow client's retransmits. */
  retryTokenLifetimeMs: 10_000,
  /** Handshakes in flight at once: bounds the CPU and memory a flood of Initials can take. */
  maxHandshakes: 256,
  /**
   * Handshakes from one address at once: a quarter of the slots, so one source (with retry on,
   * one it really holds) cannot take them all; many nodes behind one NAT still fit.
   */
  maxHandshakesPerSource: 64,
  /**
   * A handshake takes a few round trips; one still open after 10 s (a third of the idle timeout)
   * is a peer that stalls on purpose or a path that fails: its slot goes to someone else.
   */
  handshakeTimeoutMs: 10_000,
  /** Connections at once (both roles): far above a node's need, below what exhausts memory. */
  maxConnections: 10_000,
  /** The largest UDP payload: safe under tunnels and PPPoE (1500 minus their headers). */
  maxUdpPayload: 1350,
  /** Streams a peer may open concurrently, each kind: one request is one stream. */
  maxStreams: 1024,
  /** Initial per-stream window, 1 MiB: a round trip of bulk at LAN speed (auto-tuned up). */
  streamWindow: 1024 * 1024,
  /** Initial per-connection window, 16 MiB: many streams in flight at once (auto-tuned up). */
  connectionWindow: 16 * 1024 * 1024,
  /** Bytes buffered for a slow stream reader before flow control pushes back. */
  readBufferBytes: 1024 * 1024,
  /** Bytes a stream writer may queue before `write()` waits: keeps memory per stream bounded. */
  writeBufferBytes: 256 * 1024,
  /** Received datagrams kept for the application; the oldest is dropped (and counted) past it. */
  datagramQueue: 1024,
  /**
   * BBR: measured here, quiche's CUBIC and Reno fall into long exponential PTO backoff under
   * random loss (4 MiB at 5% loss each way: CUBIC 7.7 s, BBR 0.19 s). docs/quic.md.
   */
  congestionControl: "bbr" as "cubic" | "reno" | "bbr",
  /**
   * How long `rebind` keeps the old socket after it last carried a packet: a few round trips
   * plus quiche's loss recovery of what was in flight on the old path.
   */
  rebindGraceMs: 2000,
  /** `QuicStream.readAll`'s limit, 64 MiB: a whole message in memory, not an unbounded one. */
  readAllLimit: 64 * 1024 * 1024,
} as const;

/** The engine's internal constants (not options). */
export const TUNING = {
  /** Connection id length: 160 bits, unguessable, and a fixed size for the short-header parse. */
  cidLength: 20,
  /** Send slots per flush: packets built before one batched socket write. */
  sendSlots: 64,
  /** Packets one connection may emit per flush before others get a turn. */
  sendBurst: 256,
  /** A flush less than this long ago (ms) means packets are streaming in: batch per turn. */
  busyMs: 0.05,
  /** Microtask hops to wait for the application's answer before sending (`flushAfterApp`). */
  appHops: 16,
  /**
   * Packets in one GSO run at most (lib/quic/gso.ts): quinn's 10. Longer runs cost a little less
   * CPU (bench/udp: 0.74 against 1.10 µs a packet at 32) but land as denser bursts at the peer.
   */
  gsoRun: 10,
  /** How long a lone ACK may wait for data to ride with (RFC 9000 allows max_ack_delay, 25 ms). */
  ackHoldMs: 1,
  /** Auto-tuning ceilings of the flow-control windows. */
  maxStreamWindow: 16 * 1024 * 1024,
  maxConnectionWindow: 24 * 1024 * 1024,
  /** Connection ids each side keeps for the other: enough for a migration or two. */
  activeConnectionIdLimit: 4,
  /** Datagrams queued for sending per connection. */
  datagramSendQueue: 1024,
  /** `rebind`: how often the old socket is checked, and the longest it is kept. */
  rebindCheckMs: 500,
  rebindMaxMs: 30_000,
  /** A path migration is given up after this many probes of the new path did not validate. */
  migrationProbes: 4,
  /**
   * Datagrams a socket keeps waiting for the kernel's send buffer to drain (Bun; `node:dgram`
   * queues its own): a few flushes' worth, and QUIC recovers what is dropped past it.
   */
  udpBacklog: 4096,
  /** Signature algorithms offered in TLS: Ed25519 first (Macula's keys), then the usual ones. */
  sigalgs: "ed25519:ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:rsa_pss_rsae_sha256:" +
    "rsa_pss_rsae_sha384:rsa_pkcs1_sha256",
} as const;
