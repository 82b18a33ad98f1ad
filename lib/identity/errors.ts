/**
 * The errors of lib/identity, one class per kind of problem: a bad name, a refused peer, a CA
 * operation the operator can fix, a file problem. Each takes `ErrorOptions` (`{ cause }`) after
 * its message.
 */

/** A name that breaks the syntax rules (realm, group, node id); `message` says which rule. */
export class NameError extends Error {
  override name = "NameError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Why a peer was refused. */
export type IdentityErrorCode =
  | "bad-certificate"
  | "unknown-ca"
  | "bad-signature"
  | "expired"
  | "not-yet-valid"
  | "revoked"
  | "wrong-realm"
  | "missing-san"
  | "node-id-mismatch"
  | "not-for-nodes";

/** A refused peer (`Verifier`): `code` for programs, the message for people. */
export class IdentityError extends Error {
  override name = "IdentityError";
  constructor(readonly code: IdentityErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * A CA operation refused with a reason the operator can fix (bad input, wrong passphrase, an
 * expired CA, a certificate or CRL that is not this CA's): one clear line.
 */
export class CertsError extends Error {
  override name = "CertsError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A file-level problem (exists, unreadable, cannot be written); the message names the path. */
export class FileError extends Error {
  override name = "FileError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
