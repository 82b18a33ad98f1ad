/**
 * Layer 3, identity: who a node or user is, and the certificates that say so
 * (docs/certificates.md). Everything outside lib/identity imports it from here.
 *
 * - Names (names.ts): realms and realm tags, node ids (the hash of a key), groups, and the
 *   `macula://` URIs certificates carry.
 * - Checking a peer (verify.ts): `Verifier` — chain, realm, the node id bound to the key, groups,
 *   revocation — returns a `PeerIdentity` or throws an `IdentityError` with a code.
 * - Making certificates: the profile (profile.ts) and the one issuer (issuer.ts) over keys
 *   (keys.ts); the realm CA on disk (ca.ts: `initCa`, `loadCa`; issue.ts: `issueCert`,
 *   `signCsr`; crl.ts: `revoke`, `loadCrl`), used by `macula certs` and the dev realm; an
 *   in-memory CA for demos and tests (devca.ts: `makeCa`, `issue`, `tlsFor`).
 * - Reading certificates (certificates.ts) and their expiry (expiry.ts).
 * - Credentials (credentials.ts): the CA, a certificate and its key, and their directory.
 * - Files (files.ts): reading inputs and writing outputs atomically.
 * - `IDENTITY_DEFAULTS` (defaults.ts): lifetimes and margins, each with its reason.
 * - Errors (errors.ts): `NameError`, `IdentityError`, `CertsError`, `FileError`.
 * - `x509`: @peculiar/x509, ready to use (x509.ts).
 */
export {
  base32,
  caUri,
  checkGroup,
  checkRealm,
  groupUri,
  isNodeIdText,
  type MaculaUri,
  nodeIdFromSpki,
  nodeIdFromText,
  nodeIdText,
  nodeUri,
  parseMaculaUri,
  realmProblem,
  realmTag,
  realmTagHex,
  type Role,
  ROLES,
} from "./names.ts";
export { type CrlLoaded, type PeerIdentity, Verifier, type VerifierOptions } from "./verify.ts";
export {
  generateKeyPair,
  KEY_ALGORITHMS,
  type KeyType,
  keyTypeOf,
  publicKeySpki,
  spkiOf,
} from "./keys.ts";
export {
  type CaCertificateSpec,
  createCaCertificate,
  type LeafCertificate,
  type LeafCertificateSpec,
  type Signer,
  signLeafCertificate,
} from "./issuer.ts";
export {
  type Ca,
  CA_CERT_FILE,
  CA_KEY_FILE,
  caKeyEncrypted,
  CRL_FILE,
  initCa,
  type InitCaOptions,
  type InitCaResult,
  loadCa,
} from "./ca.ts";
export {
  checkName,
  issueCert,
  type Issued,
  type IssueOptions,
  type LeafOptions,
  signCsr,
  type SignCsrOptions,
} from "./issue.ts";
export {
  loadCrl,
  revoke,
  REVOKE_REASONS,
  type RevokeOptions,
  type RevokeReason,
  type RevokeResult,
} from "./crl.ts";
export { caRealmOf, derChainOf, normalizeSerial, parseCert, sanUris } from "./certificates.ts";
export { daysUntil, expiryWarnings, formatDuration } from "./expiry.ts";
export { type DevCa, type DevCert, type DevIssueOptions, issue, makeCa, tlsFor } from "./devca.ts";
export { type Credentials, CREDS_FILES, loadCredsDir, writeCredsDir } from "./credentials.ts";
export { fileProblem, readText } from "./files.ts";
export { IDENTITY_DEFAULTS } from "./defaults.ts";
export {
  CertsError,
  FileError,
  IdentityError,
  type IdentityErrorCode,
  NameError,
} from "./errors.ts";
export { x509 } from "./x509.ts";
