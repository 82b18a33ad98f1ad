/**
 * Layer 2, the wire: every message Macula puts on the network is a CBOR array checked field by
 * field against a declared spec (docs/wire-protocol.md). Frames (`Codec`: the session's and the
 * bus's, behind a length prefix on streams; membership's, alone in a datagram), and the one field
 * checker (`checkField`) that also checks request payloads (lib/peer/requests.ts). Errors name
 * the frame and the field (`WireError`).
 */
export {
  checkField,
  Codec,
  DEFAULT_MAX_FRAME,
  type FieldKind,
  type FieldSpec,
  FIRST_IGNORABLE_TYPE,
  type Frame,
  FrameReader,
  type FrameSpec,
} from "./codec.ts";
export { encodeFrame, type Item, utf8Length } from "./cbor.ts";
export { WireError } from "./errors.ts";
