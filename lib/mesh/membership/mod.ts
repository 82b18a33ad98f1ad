/**
 * SWIM + Lifeguard membership (sans-IO), its member directory, messages, their wire form, and
 * the members' own signed records (what a signature covers; the edge signs and checks).
 */
export {
  DEFAULT_CONFIG,
  type MemberEvent,
  Membership,
  type MembershipConfig,
  type MembershipOptions,
  type MembershipStats,
  type MemberView,
  SCREEN_BOUND,
  SCREEN_CHECK,
  SCREEN_DROP,
  SCREEN_PASS,
  type ScreenItem,
} from "./swim.ts";
export {
  ALIVE,
  DEAD,
  Directory,
  type DirectoryOptions,
  type Entry,
  LEFT,
  type MemberMeta,
  MemberTable,
  STATE_NAMES,
  type StateName,
  SUSPECT,
  UNKNOWN,
} from "./directory.ts";
export {
  ED25519_PROOF_BYTES,
  hasRecord,
  MAX_INCARNATION,
  type Msg,
  type Proof,
  sizeOf,
  U_ALIVE,
  U_DEAD,
  U_LEFT,
  U_SUSPECT,
  type Update,
  updateSize,
} from "./messages.ts";
export {
  decodeMembership,
  encodeMembership,
  MAX_UPDATES,
  MEMBERSHIP_FRAMES,
  membershipCodec,
  toMsg,
  type WireMessage,
  type WireRecord,
  type WireUpdate,
} from "./wire.ts";
export {
  RECORD_DOMAIN,
  recordBytes,
  type RecordKeyType,
  recordKeyType,
  type RecordSigner,
} from "./records.ts";
