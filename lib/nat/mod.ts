/**
 * Layer 8, NAT traversal: STUN messages (RFC 8489, RFC 5780 attributes), a STUN server that
 * shares a QUIC endpoint's port, netcheck (RFC 5780 NAT behaviour discovery), hole-punching
 * probes, the relay, and the traversal that reaches a node by id (direct, punched through a
 * rendezvous, or relayed) with its requests. See docs/nat-traversal.md.
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
  RelayServer,
  type RelayStats,
  RelayTunnels,
  type TunnelEndpoint,
  wrapRelayPacket,
} from "./relay.ts";
export {
  type PathKind,
  type Reached,
  type ReachResult,
  Traversal,
  type TraversalHost,
} from "./traversal.ts";
export {
  type HostPortBody,
  NAT_DIAL,
  NAT_DIALBACK,
  NAT_INTRODUCE,
  NAT_OBSERVED,
  NAT_PING,
  NAT_PUNCH,
  NAT_PUNCHED,
  NAT_REACHABLE,
  NAT_UPGRADE,
  PING,
  RELAY_ACCEPT,
  RELAY_OPEN,
} from "./requests.ts";
export { isPunch, PUNCH_MAGIC, punchConnect, type PunchOptions, sendProbes } from "./punch.ts";
export { PunchError, RelayRefused, StunError, TraversalError } from "./errors.ts";
