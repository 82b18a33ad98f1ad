/**
 * lib/quic: Macula's QUIC engine. See docs/quic.md.
 * @module
 */
export { PEER_REJECTED, QuicEndpoint, TUNNEL_HOST } from "./endpoint.ts";
export type { EndpointStats, QuicEndpointOptions, TlsOptions } from "./endpoint.ts";
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
export { openNodeUdpSocket, openUdpSocket } from "./udp.ts";
export type {
  PacketHandler,
  UdpSocket,
  UdpSocketFactory,
  UdpSocketOptions,
  UdpStats,
} from "./udp.ts";
export type { HostPort } from "./native.ts";
