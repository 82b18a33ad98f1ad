/**
 * Layer 10, the node: the composition root — configuration, credentials, the wiring of every
 * layer below into a running node (`Node.start`), its lifecycle and its views. docs/architecture.md
 * has the picture; lib/node/node.ts the table of its parts.
 */
export {
  DUPLICATE_ROUTE,
  Node,
  type NodeSnapshot,
  type NodeStartOptions,
  PROTOCOL_VIOLATION,
} from "./node.ts";
export {
  adminListen,
  configFrom,
  configToFile,
  type NodeConfig,
  type NodeConfigInput,
  parseConfig,
  parseSeed,
  relativeTo,
  sampleConfig,
  withDefaults,
} from "./config.ts";
export { ADMIN_PORT_OFFSET, DEFAULTS, RUNTIME } from "./defaults.ts";
export { type NodeCredentials, nodeCredentials } from "./credentials.ts";
export { ConfigError, NodeError, StartError } from "./errors.ts";
export { CRL_KEPT, Revocation } from "./revocation.ts";
export { checkNode, LOCK_FILE } from "./startup.ts";
export { MEMBERSHIP_MSG, MembershipGlue, type MembershipGlueStats } from "./membership.ts";
