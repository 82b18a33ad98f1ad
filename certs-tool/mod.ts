/**
 * `macula certs` as a tool: what it adds to the realm CA of lib/identity (which nodes use too,
 * and which the command calls directly) for the people who run it.
 *
 * - describe.ts: a certificate as plain data (`certs print`), with expiry warnings.
 * - verdict.ts: `verifyCert`, one failure class and exit code per kind of problem (`certs verify`).
 * - duration.ts: durations as operators type them in flags (`8760h`, `30d`, `1d12h`).
 */
export { type CertInfo, describe, describeCert } from "./describe.ts";
export {
  type FailureClass,
  VERIFY_EXIT_CODES,
  verifyCert,
  type VerifyOptions,
  type VerifyResult,
} from "./verdict.ts";
export { DurationError, MAX_DURATION_MS, parseDuration } from "./duration.ts";
