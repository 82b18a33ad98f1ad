/**
 * The operator's verdict on a certificate (`macula certs verify`): the checks a node makes
 * (lib/identity `Verifier`) and the profile's own (EKU, key usage), each failure sorted into one
 * class with its own exit code, so scripts can tell an expired certificate from a forged one.
 */
import {
  caRealmOf,
  CertsError,
  checkRealm,
  expiryWarnings,
  loadCrl,
  normalizeSerial,
  parseMaculaUri,
  x509,
} from "../lib/identity/mod.ts";
import { type CertInfo, crlWarnings, describe } from "./describe.ts";

/** Why a certificate was rejected. */
export type FailureClass =
  | "expired"
  | "not-yet-valid"
  | "untrusted"
  | "wrong-realm"
  | "revoked"
  | "bad-profile";

/** Exit codes of `macula certs verify`, one per failure class. */
export const VERIFY_EXIT_CODES: Record<"ok" | FailureClass, number> = {
  ok: 0,
  expired: 3,
  "not-yet-valid": 4,
  untrusted: 5,
  "wrong-realm": 6,
  revoked: 7,
  "bad-profile": 8,
};

/** The verdict on a certificate. */
export type VerifyResult =
  & { warnings: string[]; cert?: CertInfo }
  & (
    | { ok: true; class: "ok"; code: 0; message: string }
    | { ok: false; class: FailureClass; code: number; message: string }
  );

/** Options for `verifyCert`. */
export interface VerifyOptions {
  caPem: string;
  certPem: string;
  crlPem?: string;
  /** The realm the certificate must belong to (besides the CA's). */
  realm?: string;
  /** How messages name the CA certificate and the CRL; default "the CA certificate", "the CRL". */
  names?: { ca?: string; crl?: string };
  now?: Date;
}

/**
 * Checks an end-entity certificate against a realm CA: signature, validity window, profile
 * (CA flag, key usage, EKU, node URI, node id = hash of the key), realm, and the CRL.
 * Problems with the inputs themselves (an unreadable CA or CRL) throw `CertsError`.
 */
export async function verifyCert(opts: VerifyOptions): Promise<VerifyResult> {
  const now = opts.now ?? new Date();
  if (opts.realm !== undefined) checkRealm(opts.realm);
  const caName = opts.names?.ca ?? "the CA certificate";
  let ca: x509.X509Certificate;
  try {
    ca = new x509.X509Certificate(opts.caPem);
  } catch (e) {
    throw new CertsError(`${caName} is not a readable X.509 certificate (damaged)`, { cause: e });
  }
  const caRealm = caRealmOf(ca);
  const caBc = ca.getExtension(x509.BasicConstraintsExtension);
  if (caRealm === null || !caBc?.ca) {
    throw new CertsError(
      `${caName} is not a Macula realm CA (no CA flag or no macula://<realm>/ca SAN)`,
    );
  }
  const crl = opts.crlPem === undefined
    ? undefined
    : await loadCrl(opts.crlPem, ca, opts.names?.crl ?? "the CRL");
  const warnings = expiryWarnings(`the CA for realm ${caRealm}`, ca, now);
  if (crl) warnings.push(...crlWarnings(crl, now));
  const fail = (cls: FailureClass, message: string, info?: CertInfo): VerifyResult => {
    const r: VerifyResult = {
      ok: false,
      class: cls,
      code: VERIFY_EXIT_CODES[cls],
      message,
      warnings,
    };
    if (info) r.cert = info;
    return r;
  };

  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(opts.certPem);
  } catch {
    return fail("untrusted", "the certificate cannot be parsed (damaged or tampered)");
  }
  const info = describe(cert, now);
  let signed = false;
  try {
    signed = await cert.verify({ publicKey: ca.publicKey, signatureOnly: true });
  } catch {
    signed = false;
  }
  if (cert.issuerName.toString() !== ca.subjectName.toString()) {
    return fail("untrusted", `issued by "${cert.issuer}", not by this CA ("${ca.subject}")`, info);
  }
  if (!signed) {
    return fail(
      "untrusted",
      "the signature does not verify against this CA (wrong CA, or the certificate was altered)",
      info,
    );
  }
  if (ca.notAfter.getTime() < now.getTime()) {
    return fail("expired", `the CA expired on ${ca.notAfter.toISOString()}`, info);
  }
  if (cert.notAfter.getTime() < now.getTime()) {
    return fail("expired", `the certificate expired on ${info.notAfter}`, info);
  }
  if (cert.notBefore.getTime() > now.getTime() || ca.notBefore.getTime() > now.getTime()) {
    const when = cert.notBefore.getTime() > now.getTime() ? cert.notBefore : ca.notBefore;
    return fail("not-yet-valid", `not valid until ${when.toISOString()}`, info);
  }
  warnings.push(...expiryWarnings(`certificate ${cert.subject}`, cert, now));
  if (info.isCa) {
    return fail(
      "bad-profile",
      "the certificate is a CA certificate, not a node or user certificate",
      info,
    );
  }
  if (!info.keyUsage.includes("digitalSignature") || info.keyUsage.includes("keyCertSign")) {
    return fail(
      "bad-profile",
      `key usage is [${info.keyUsage.join(", ")}]: needs digitalSignature (and not keyCertSign)`,
      info,
    );
  }
  const nodeUris = info.uris.map(parseMaculaUri).filter((p) =>
    p?.kind === "node" || p?.kind === "client"
  );
  if (nodeUris.length !== 1) {
    return fail(
      "bad-profile",
      nodeUris.length === 0
        ? "missing SAN: no macula://<realm>/node/<node-id> (or /client/<node-id>) URI"
        : `${nodeUris.length} node URIs (exactly one allowed)`,
      info,
    );
  }
  const needs = info.role === "client" ? ["clientAuth"] : ["serverAuth", "clientAuth"];
  if (!needs.every((u) => info.extendedKeyUsage.includes(u))) {
    return fail(
      "bad-profile",
      `extended key usage is [${info.extendedKeyUsage.join(", ")}]: a ${
        info.role ?? "node"
      } certificate needs ${needs.join(" and ")}`,
      info,
    );
  }
  if (info.nodeId !== info.keyNodeId) {
    return fail(
      "bad-profile",
      `node id mismatch: the URI says ${info.nodeId} but the key hashes to ${info.keyNodeId}`,
      info,
    );
  }
  const realms = new Set(info.uris.map(parseMaculaUri).flatMap((p) => (p ? [p.realm] : [])));
  if (info.realm !== caRealm || realms.size !== 1) {
    return fail(
      "wrong-realm",
      `the certificate names realm ${[...realms].join(", ")} but the CA is for realm ${caRealm}`,
      info,
    );
  }
  if (opts.realm !== undefined && info.realm !== opts.realm) {
    return fail(
      "wrong-realm",
      `the certificate is for realm ${info.realm}, not ${opts.realm}`,
      info,
    );
  }
  if (crl) {
    const hit = crl.entries.find((e) => normalizeSerial(e.serialNumber) === info.serial);
    if (hit) {
      return fail(
        "revoked",
        `serial ${info.serial} was revoked on ${hit.revocationDate.toISOString()}`,
        info,
      );
    }
  }
  return {
    ok: true,
    class: "ok",
    code: 0,
    message: `valid: node ${info.nodeId} in realm ${info.realm}, until ${info.notAfter}`,
    warnings,
    cert: info,
  };
}
