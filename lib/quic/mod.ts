/**
 * Layer 1, the QUIC engine (over quiche's Node-API bindings): `QuicEndpoint`, one UDP socket
 * that both dials and accepts, with mutual TLS, stateless retry, handshake and connection
 * limits, `rebind` (the socket moves, dialed connections migrate with it), tunnels for relayed
 * connections (`openTunnel`, `TUNNEL_HOST`), raw datagrams from its socket (`sendRaw`) and a demux
 * hook for the non-QUIC packets (STUN, probes) sharing it; `QuicConnection` (streams,
 * datagrams, stats, `moveTo` another peer address) and `QuicStream` (async-iterable reads,
 * writes with backpressure). `QUIC_DEFAULTS` holds every default with its reason; the errors are
 * `QuicError` and its subclasses. Also the UDP socket adapter the endpoint runs on, which
 * lib/nat's own sockets use too. See docs/quic.md.
 * @module
 */
export { bindProblem } from "./bind.ts";
export { PEER_REJECTED, QuicEndpoint } from "./endpoint.ts";
export type { EndpointStats, EndpointTraffic } from "./endpoint.ts";
export type { QuicEndpointOptions, TlsOptions } from "./config.ts";
export { QUIC_DEFAULTS } from "./defaults.ts";
export { TUNNEL_HOST } from "./tunnels.ts";
export { QuicConnection } from "./connection.ts";
export type { ConnectionStats } from "./connection.ts";
export { QuicStream } from "./stream.ts";
export {
  type CloseInfo,
  type CloseInitiator,
  ConnectionClosedError,
  QuicError,
  StreamResetError,
  StreamStoppedError,
} from "./errors.ts";
export { openNodeUdpSocket, openUdpSocket, sameHost } from "./udp.ts";
export type {
  PacketHandler,
  UdpSocket,
  UdpSocketFactory,
  UdpSocketOptions,
  UdpStats,
} from "./udp.ts";
export { type HostPort, quicheProtocolVersion } from "./native.ts";
