/**
 * lib/nat: NAT traversal. STUN messages (RFC 8489, RFC 5780 attributes), a STUN server that
 * shares a QUIC endpoint's port, and netcheck (RFC 5780 NAT behaviour discovery). See
 * docs/nat-traversal.md.
 * @module
 */
export {
  ATTR,
  attrName,
  BINDING,
  crc32,
  decodeStun,
  type EncodeOptions,
  encodeStun,
  FINGERPRINT_XOR,
  formatIp,
  HEADER_SIZE,
  isStun,
  MAGIC_COOKIE,
  newTransactionId,
  parseIp,
  type RawAttribute,
  type StunAddress,
  type StunClass,
  StunError,
  type StunMessage,
  verifyIntegrity,
} from "./stun.ts";
export {
  type Address,
  openRawSocket,
  type OwnedRawSocket,
  type RawSocket,
  type Slot,
  StunServer,
  type StunServerOptions,
  type StunServerStats,
} from "./stun-server.ts";
export {
  type Behaviour,
  BEHAVIOURS,
  type BehaviourTests,
  type BindingResult,
  type Classification,
  classify,
  type NetcheckOptions,
  type NetcheckReport,
  type Probe,
  type Retransmit,
  runNetcheck,
  type ServerResult,
  StunClient,
  type Verdict,
} from "./netcheck.ts";
export {
  isRelayPacket,
  RELAY_BYTE,
  RELAY_DEFAULTS,
  type RelayAllocationInfo,
  type RelayEnd,
  type RelayLimits,
  relayOn,
  RelayRefused,
  RelayServer,
  type RelayStats,
  RelayTunnels,
  type TunnelEndpoint,
  wrapRelayPacket,
} from "./relay.ts";
