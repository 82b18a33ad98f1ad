/**
 * `macula certs` as a tool: what it adds to the realm CA of lib/identity (which nodes use too,
 * and which the command calls directly) for the people who run it.
 *
 * - describe.ts: what a file holds as plain data (`certs print`): certificates with expiry
 *   warnings, CRLs, certificate requests, public keys.
 * - inputs.ts: telling files apart by their PEM labels, and refusing the wrong kind clearly.
 * - keypair.ts: a key pair for `certs issue --in-pub` (`certs key`).
 * - verdict.ts: `verifyCert`, one failure class and exit code per kind of problem (`certs verify`).
 * - duration.ts: durations as operators type them in flags (`8760h`, `30d`, `1d12h`).
 */
export {
  type CertInfo,
  type CrlEntryInfo,
  type CrlInfo,
  crlWarnings,
  type CsrInfo,
  describe,
  describeCert,
  describeCrl,
  describeCsr,
  describeFile,
  describePublicKey,
  type FileDescription,
  type FileInfo,
  PRINTABLE,
  type PublicKeyInfo,
} from "./describe.ts";
export {
  blocksOf,
  type InputSpec,
  KIND_TEXT,
  kindText,
  type PemBlock,
  pemBlocks,
  type PemKind,
  readInput,
} from "./inputs.ts";
export { type KeyPairMade, type KeyPairOptions, makeKeyPair } from "./keypair.ts";
export {
  type FailureClass,
  VERIFY_EXIT_CODES,
  verifyCert,
  type VerifyOptions,
  type VerifyResult,
} from "./verdict.ts";
export { DurationError, MAX_DURATION_MS, parseDuration } from "./duration.ts";
