/**
 * Layer 7, policy: what a certificate of the realm may do — permissions from certificate groups
 * (`Permissions`: publish, subscribe, serve, call and queue-group rules with allow and deny
 * patterns, a realm default, the operator group). Pure; the node applies it at every entry point
 * (docs/security.md). The `crl.push` request that spreads revocation (revocation.ts).
 */
export {
  type Asker,
  covers,
  type Denial,
  OPEN,
  type Operation,
  overlaps,
  parsePermissions,
  Permissions,
  type PermissionsConfig,
  RULE_KINDS,
  type RuleKind,
  type RuleSet,
} from "./permissions.ts";
export { PolicyError } from "./errors.ts";
export { CRL_PUSH, MAX_CRL_BYTES } from "./revocation.ts";
