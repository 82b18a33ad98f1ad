/** SWIM + Lifeguard membership (sans-IO), its member directory, messages and their wire form. */
export {
  DEFAULT_CONFIG,
  type MemberEvent,
  Membership,
  type MembershipConfig,
  type MembershipOptions,
  type MembershipStats,
  type MemberView,
} from "./swim.ts";
export {
  ALIVE,
  DEAD,
  Directory,
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
  type Msg,
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
} from "./wire.ts";
