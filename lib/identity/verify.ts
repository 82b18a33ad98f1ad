/**
 * Checking a peer: given the certificate chain a QUIC handshake delivered (DER, leaf first),
 * return who the peer is — node id, realm, groups, expiry — or say precisely why not.
 *
 * TLS has already verified the chain against the endpoint's CA bundle; this checks it again (so
 * the answer does not depend on how TLS was configured) and adds what TLS does not know: the
 * realm, the node id bound to the key, groups, and revocation.
 *
 * - Trust anchors: one realm CA, or several in one bundle (a rotation: old and new CA, which
 *   `macula certs ca init` gives the same subject name). Each must be a CA (basicConstraints cA)
 *   that may sign certificates (keyUsage keyCertSign), all of one realm. A CA is told apart from
 *   another of the same name by its key: its key id is the SHA-256 of its public key (hex).
 * - Path: leaf → the intermediates the peer sent → an anchor, at most 5 certificates, checked as
 *   `openssl verify` does: an issuer is found by name, authority key identifier and signature;
 *   every issuer is a CA with keyCertSign within its pathLenConstraint; every certificate is in
 *   its validity window; a critical extension this code does not apply refuses the path.
 * - Revocation: one CRL per anchor, taken only if that anchor signed it (and may sign CRLs:
 *   keyUsage cRLSign) and its CRL number is greater than the one held. It covers the certificate
 *   of the path the anchor signed: the leaf, or the topmost intermediate (revoking an
 *   intermediate revokes everything under it; a leaf under an intermediate cannot be revoked on
 *   its own, as no CRL of the intermediate is held).
 * - Cost: parsing and checking a chain takes milliseconds, and every node checks every member's
 *   chain (membership) and every peer's (each handshake). A chain that passed is remembered,
 *   process-wide and bounded (`VERIFIED_CACHE_SIZE`), with what can change: the time window its
 *   path is valid in, the anchor that signed it (by key id and certificate), and the serial its
 *   CRL covers. A hit outside the window, under another set of anchors, or revoked since goes
 *   the whole way again, so the answer (and any error) is what the full check gives.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { commonName, sanUris } from "./certificates.ts";
import { crlNumber } from "./crl.ts";
import { IdentityError } from "./errors.ts";
import { checkRealm, nodeIdFromSpki, nodeIdText, parseMaculaUri, type Role } from "./names.ts";
import { x509 } from "./x509.ts";

/** Who a verified peer is. */
export interface PeerIdentity {
  /** Node id, text form (52 base32 characters). */
  nodeId: string;
  /** Node id, 32 bytes (a Kademlia key). */
  nodeIdBytes: Uint8Array;
  realm: string;
  /** A mesh node or a client (the kind of its `macula://` URI). */
  role: Role;
  groups: string[];
  /** The certificate's common name (the name given when it was issued). */
  name: string;
  notAfter: Date;
  /** Certificate serial number, hex (lowercase, no leading zeros). */
  serial: string;
  /** The subject of the certificate's issuer (the CA whose CRL applies to it). */
  issuer: string;
  /**
   * What the CRLs are checked against, at the handshake and whenever a CRL arrives: the
   * certificate of the path the trust anchor signed (the leaf, or the topmost intermediate), as
   * the anchor's key id and that certificate's serial.
   */
  revocation: { ca: string; serial: string };
}

/** What a verifier trusts. */
export interface VerifierOptions {
  /**
   * The realm CA certificate (PEM or DER), or several in one PEM bundle: during a CA rotation the
   * old and the new CA of the realm together. Every one must be a CA of the same realm.
   */
  ca: string | Uint8Array;
  /** The realm peers must belong to; default: the one in the CA's `macula://<realm>/ca` SAN. */
  realm?: string;
  /** A CRL signed by one of the CAs (PEM or DER); more, or newer, later with `loadCrl`. */
  crl?: string | Uint8Array;
}

/** What `loadCrl` did with a CRL. */
export interface CrlLoaded {
  /** True when it replaced the CRL held for its CA (none held, or a smaller CRL number). */
  accepted: boolean;
  /** Its cRLNumber (RFC 5280 5.2.3), null when it has none. */
  number: bigint | null;
  /** The subject of the CA that signed it. */
  issuer: string;
  /** The key id of the CA that signed it (`Verifier.keyIdOf`): one CRL is held per key id. */
  ca: string;
  /** Serials it revokes. */
  revoked: number;
  /** Why it was not taken (`accepted: false`). */
  reason?: string;
}

/** The longest chain accepted: leaf, at most three intermediates, the trust anchor. */
const MAX_INTERMEDIATES = 3;

/** PEM text as is; bytes copied into a plain ArrayBuffer, as @peculiar/x509 wants. */
const asn = (v: string | Uint8Array): string | Uint8Array<ArrayBuffer> =>
  typeof v === "string" ? v : Uint8Array.from(v);

const serialOf = (hex: string) => hex.toLowerCase().replace(/^0+(?=.)/, "");

/** Extensions this code applies; a certificate marking any other critical is refused. */
const KNOWN_CERT_EXTENSIONS = new Set([
  "2.5.29.19", // basicConstraints
  "2.5.29.15", // keyUsage
  "2.5.29.37", // extKeyUsage
  "2.5.29.17", // subjectAltName
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.35", // authorityKeyIdentifier
]);
/** The same for CRLs (cRLNumber, authorityKeyIdentifier) and their entries (reason, invalidity date). */
const KNOWN_CRL_EXTENSIONS = new Set(["2.5.29.20", "2.5.29.35"]);
const KNOWN_CRL_ENTRY_EXTENSIONS = new Set(["2.5.29.21", "2.5.29.24"]);

/** The first extension marked critical that `known` does not hold, or null. */
const unknownCritical = (exts: readonly x509.Extension[], known: ReadonlySet<string>) =>
  exts.find((e) => e.critical && !known.has(e.type))?.type ?? null;

/** Authority key id of a certificate or CRL, subject key id of a CA (hex, lowercase), or null. */
const akidOf = (c: x509.X509Certificate | x509.X509Crl) =>
  c.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId?.toLowerCase() ?? null;
const skidOf = (c: x509.X509Certificate) =>
  c.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId?.toLowerCase() ?? null;

/** Could `by` have issued `c` (or the CRL `c`)? Same name, and key identifiers that agree. */
const mayHaveIssued = (c: x509.X509Certificate | x509.X509Crl, by: x509.X509Certificate) => {
  if (c.issuer !== by.subject) return false;
  const a = akidOf(c);
  const s = skidOf(by);
  return a === null || s === null || a === s;
};

/** One CA of the bundle and the CRL held for it. */
interface Anchor {
  cert: x509.X509Certificate;
  /** `Verifier.keyIdOf(cert)`. */
  keyId: string;
  revoked: Set<string>;
  crlNumber: bigint | null;
  hasCrl: boolean;
  nextUpdate: Date | null;
}

function parseCertificates(v: string | Uint8Array): x509.X509Certificate[] {
  if (typeof v !== "string") return [new x509.X509Certificate(asn(v))];
  const blocks = x509.PemConverter.decode(v);
  if (blocks.length === 0) return [new x509.X509Certificate(v)]; // let it say what is wrong
  return blocks.map((b) => new x509.X509Certificate(b));
}

/** Chains remembered as verified, process-wide (one entry is a few hundred bytes). */
export const VERIFIED_CACHE_SIZE = 16_384;

/** A chain that passed: what a later check of the same bytes must still confirm. */
interface Verified {
  /** The DER of the anchor that signed its path (anchors with the same key id may differ). */
  anchorDer: string;
  anchorKeyId: string;
  topSerial: string;
  notBefore: number;
  notAfter: number;
  identity: PeerIdentity;
}

const verified = new Map<string, Verified>();
let verifiedHits = 0;

/** The shared cache of verified chains: entries held, and checks it answered. */
export function verifiedCache(): { size: number; hits: number } {
  return { size: verified.size, hits: verifiedHits };
}

/** The cache key of a chain: the SHA-256 of each certificate, in order, and the realm. */
function chainKey(items: readonly (Uint8Array | string)[], realm: string): string {
  const h = createHash("sha256").update(realm);
  for (const d of items) {
    const bytes = typeof d === "string" ? Buffer.from(d) : d;
    h.update(String(bytes.length)).update(":").update(bytes);
  }
  return h.digest("base64");
}

const ders = new WeakMap<x509.X509Certificate, string>();
/** A certificate's DER, base64 (remembered per parsed certificate). */
function derOf(c: x509.X509Certificate): string {
  let d = ders.get(c);
  if (d === undefined) ders.set(c, d = Buffer.from(c.rawData).toString("base64"));
  return d;
}

/** Checks peers against the CAs of one realm (one, or old and new during a rotation). */
export class Verifier {
  readonly realm: string;
  readonly #anchors: Anchor[];

  private constructor(anchors: x509.X509Certificate[], realm: string) {
    this.#anchors = anchors.map((cert) => ({
      cert,
      keyId: Verifier.keyIdOf(cert),
      revoked: new Set(),
      crlNumber: null,
      hasCrl: false,
      nextUpdate: null,
    }));
    this.realm = realm;
  }

  /** The realm CA (the first of the bundle). */
  get ca(): x509.X509Certificate {
    return this.#anchors[0]!.cert;
  }

  /** A CA's key id: the SHA-256 of its public key (SubjectPublicKeyInfo), hex. */
  static keyIdOf(cert: x509.X509Certificate): string {
    return Buffer.from(nodeIdFromSpki(new Uint8Array(cert.publicKey.rawData))).toString("hex");
  }

  /** Every CA this verifier trusts. */
  get cas(): x509.X509Certificate[] {
    return this.#anchors.map((a) => a.cert);
  }

  /** Builds a verifier; rejects when a CA certificate or the CRL is unusable. */
  static async create(opts: VerifierOptions): Promise<Verifier> {
    let cas: x509.X509Certificate[];
    try {
      cas = parseCertificates(opts.ca);
    } catch (e) {
      throw new IdentityError(
        "bad-certificate",
        `cannot parse the CA certificate: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const realms = new Set<string>();
    for (const [i, ca] of cas.entries()) {
      const which = cas.length > 1
        ? `CA certificate ${i + 1} of ${cas.length}`
        : "the CA certificate";
      const bc = ca.getExtension(x509.BasicConstraintsExtension);
      if (!bc?.ca) throw new IdentityError("unknown-ca", `${which} is not a CA (basicConstraints)`);
      const ku = ca.getExtension(x509.KeyUsagesExtension);
      if (!ku || !(ku.usages & x509.KeyUsageFlags.keyCertSign)) {
        throw new IdentityError(
          "unknown-ca",
          `${which} may not sign certificates (keyUsage ${
            ku ? "without" : "missing, so no"
          } keyCertSign)`,
        );
      }
      const crit = unknownCritical(ca.extensions, KNOWN_CERT_EXTENSIONS);
      if (crit) {
        throw new IdentityError(
          "unknown-ca",
          `${which} has an unsupported critical extension ${crit}`,
        );
      }
      for (const u of sanUris(ca).map(parseMaculaUri)) if (u?.kind === "ca") realms.add(u.realm);
    }
    const realm = opts.realm ?? [...realms][0];
    if (!realm) {
      throw new IdentityError(
        "wrong-realm",
        "no realm given and the CA certificate names none (macula://<realm>/ca)",
      );
    }
    checkRealm(realm);
    if (realms.size > 0 && (realms.size > 1 || !realms.has(realm))) {
      throw new IdentityError(
        "wrong-realm",
        realms.size > 1
          ? `the CA bundle mixes realms ${[...realms].join(", ")}: one realm per bundle`
          : `the CA is for realm ${[...realms].join(", ")}, not ${realm}`,
      );
    }
    const v = new Verifier(cas, realm);
    if (opts.crl) {
      const r = await v.loadCrl(opts.crl);
      if (!r.accepted) throw new IdentityError("bad-certificate", `the CRL: ${r.reason}`);
    }
    return v;
  }

  /**
   * Takes a CRL: it must be signed by one of the CAs, and it replaces the one held for that CA
   * only when newer (a greater CRL number, or none held) — an old CRL replayed cannot undo a
   * revocation. Rejects a CRL that cannot be parsed or is no CA's of this verifier.
   */
  async loadCrl(crl: string | Uint8Array): Promise<CrlLoaded> {
    let parsed: x509.X509Crl;
    try {
      parsed = new x509.X509Crl(asn(crl));
    } catch (e) {
      throw new IdentityError("bad-certificate", `cannot parse the CRL: ${(e as Error).message}`, {
        cause: e,
      });
    }
    let anchor: Anchor | undefined;
    for (const a of this.#anchors) {
      if (!mayHaveIssued(parsed, a.cert)) continue;
      if (await parsed.verify({ publicKey: a.cert.publicKey }).catch(() => false)) {
        anchor = a;
        break;
      }
    }
    if (!anchor) {
      throw new IdentityError("bad-signature", "the CRL is not signed by the realm CA");
    }
    const ku = anchor.cert.getExtension(x509.KeyUsagesExtension);
    if (!ku || !(ku.usages & x509.KeyUsageFlags.cRLSign)) {
      throw new IdentityError(
        "bad-certificate",
        `the CRL is signed by ${
          JSON.stringify(anchor.cert.subject)
        }, which may not sign CRLs (keyUsage without cRLSign)`,
      );
    }
    const crit = unknownCritical(parsed.extensions, KNOWN_CRL_EXTENSIONS) ??
      parsed.entries.map((e) => unknownCritical(e.extensions, KNOWN_CRL_ENTRY_EXTENSIONS)).find(
        (x) => x !== null,
      ) ?? null;
    if (crit) {
      throw new IdentityError(
        "bad-certificate",
        `the CRL has an unsupported critical extension ${crit} (a delta or indirect CRL?)`,
      );
    }
    let number: bigint | null;
    try {
      number = crlNumber(parsed);
    } catch (e) {
      throw new IdentityError("bad-certificate", `the CRL: ${(e as Error).message}`, { cause: e });
    }
    const out = {
      number,
      issuer: anchor.cert.subject,
      ca: anchor.keyId,
      revoked: parsed.entries.length,
    };
    if (anchor.hasCrl) {
      const held = anchor.crlNumber ?? -1n;
      if ((number ?? -1n) <= held) {
        return {
          ...out,
          accepted: false,
          reason: `not newer than the CRL held (number ${number ?? "none"}, held ${
            anchor.crlNumber ?? "none"
          })`,
        };
      }
    }
    anchor.revoked = new Set(parsed.entries.map((e) => serialOf(e.serialNumber)));
    anchor.crlNumber = number;
    anchor.hasCrl = true;
    anchor.nextUpdate = parsed.nextUpdate ?? null;
    return { ...out, accepted: true };
  }

  /** Serial numbers currently revoked by any CA of the bundle (hex, lowercase). */
  get revoked(): ReadonlySet<string> {
    const all = new Set<string>();
    for (const a of this.#anchors) for (const s of a.revoked) all.add(s);
    return all;
  }

  /** The CRL held for each CA: the CA (subject, key id), its number and how many it revokes. */
  crls(): { issuer: string; ca: string; number: bigint | null; revoked: number }[] {
    return this.#anchors.filter((a) => a.hasCrl).map((a) => ({
      issuer: a.cert.subject,
      ca: a.keyId,
      number: a.crlNumber,
      revoked: a.revoked.size,
    }));
  }

  /** When the first CRL says a newer one is due (null without a CRL or without nextUpdate). */
  get crlNextUpdate(): Date | null {
    return this.#anchors.find((a) => a.nextUpdate)?.nextUpdate ?? null;
  }

  /**
   * True when `id` (a verified identity) is revoked by the CRLs held now: by its `revocation`
   * (anchor key id and serial); without one, by serial under any CA named `issuer`.
   */
  isRevoked(
    id: { serial: string; issuer?: string; revocation?: { ca: string; serial: string } },
  ): boolean {
    const r = id.revocation;
    if (r) return this.#anchors.some((a) => a.keyId === r.ca && a.revoked.has(serialOf(r.serial)));
    return this.#anchors.some((a) =>
      (id.issuer === undefined || a.cert.subject === id.issuer) &&
      a.revoked.has(serialOf(id.serial))
    );
  }

  /**
   * Verifies a chain (DER, leaf first, then any intermediates; or one PEM/DER certificate) and
   * returns the identity. The path is built from the leaf up to a CA of the bundle and checked as
   * RFC 5280 (and `openssl verify`) does: each issuer a CA allowed to sign certificates, path
   * length constraints, every certificate in its validity window, every signature.
   */
  async verify(chain: Uint8Array[] | string | Uint8Array, now = new Date()): Promise<PeerIdentity> {
    const items = Array.isArray(chain) ? chain : [chain];
    const key = chainKey(items.slice(0, 1 + MAX_INTERMEDIATES + 1), this.realm);
    const hit = verified.get(key);
    if (hit) {
      const t = now.getTime();
      const anchor = this.#anchors.find((a) => a.keyId === hit.anchorKeyId);
      if (
        anchor && derOf(anchor.cert) === hit.anchorDer && t >= hit.notBefore &&
        t <= hit.notAfter && !anchor.revoked.has(hit.topSerial)
      ) {
        verified.delete(key); // most recently used last
        verified.set(key, hit);
        verifiedHits++;
        return hit.identity;
      }
      verified.delete(key);
    }
    const identity = await this.#verify(items, now, (v) => {
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(key, v);
    });
    return identity;
  }

  async #verify(
    items: readonly (Uint8Array | string)[],
    now: Date,
    remember: (v: Verified) => void,
  ): Promise<PeerIdentity> {
    const leafData = items[0];
    if (leafData === undefined) {
      throw new IdentityError("bad-certificate", "the peer presented no certificate");
    }
    let leaf: x509.X509Certificate;
    let extra: x509.X509Certificate[];
    try {
      leaf = new x509.X509Certificate(asn(leafData));
      extra = items.slice(1, 1 + MAX_INTERMEDIATES + 1).map((d) =>
        new x509.X509Certificate(asn(d))
      );
    } catch (e) {
      throw new IdentityError(
        "bad-certificate",
        `cannot parse the peer's certificate: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const who = `certificate ${JSON.stringify(commonName(leaf))} (serial ${leaf.serialNumber})`;
    const { anchor, top, path } = await this.#path(leaf, extra, who, now);
    if (now < leaf.notBefore) {
      throw new IdentityError(
        "not-yet-valid",
        `${who} is not valid before ${leaf.notBefore.toISOString()}`,
      );
    }
    if (now > leaf.notAfter) {
      throw new IdentityError("expired", `${who} expired on ${leaf.notAfter.toISOString()}`);
    }
    if (anchor.revoked.has(serialOf(top.serialNumber))) {
      throw new IdentityError(
        "revoked",
        top === leaf
          ? `${who} is revoked by the realm's CRL`
          : `${who}: its intermediate CA ${
            JSON.stringify(top.subject)
          } (serial ${top.serialNumber}) is revoked by the realm's CRL`,
      );
    }
    const crit = unknownCritical(leaf.extensions, KNOWN_CERT_EXTENSIONS);
    if (crit) {
      throw new IdentityError(
        "bad-certificate",
        `${who} has an unsupported critical extension ${crit}`,
      );
    }
    const bc = leaf.getExtension(x509.BasicConstraintsExtension);
    if (bc?.ca) {
      throw new IdentityError("not-for-nodes", `${who} is a CA certificate, not a node's`);
    }
    const ku = leaf.getExtension(x509.KeyUsagesExtension);
    if (ku && !(ku.usages & x509.KeyUsageFlags.digitalSignature)) {
      throw new IdentityError(
        "not-for-nodes",
        `${who} does not allow digital signatures (keyUsage)`,
      );
    }
    const parsed = sanUris(leaf).map(parseMaculaUri);
    const nodes = parsed.filter((u) => u?.kind === "node" || u?.kind === "client") as {
      kind: Role;
      realm: string;
      nodeId: string;
    }[];
    if (nodes.length !== 1) {
      throw new IdentityError(
        "missing-san",
        `${who} must carry exactly one macula://<realm>/node/<node-id> or macula://<realm>/client/<node-id> URI, found ${nodes.length}`,
      );
    }
    const node = nodes[0]!;
    if (node.realm !== this.realm) {
      throw new IdentityError(
        "wrong-realm",
        `${who} belongs to realm ${node.realm}, not ${this.realm}`,
      );
    }
    const idBytes = nodeIdFromSpki(new Uint8Array(leaf.publicKey.rawData));
    const id = nodeIdText(idBytes);
    if (id !== node.nodeId) {
      throw new IdentityError(
        "node-id-mismatch",
        `${who} names node ${node.nodeId} but its key hashes to ${id}`,
      );
    }
    const groups = parsed
      .filter((u) => u?.kind === "group" && u.realm === this.realm)
      .map((u) => (u as { group: string }).group);
    const identity: PeerIdentity = {
      nodeId: id,
      nodeIdBytes: idBytes,
      realm: node.realm,
      role: node.kind,
      groups,
      name: commonName(leaf),
      notAfter: leaf.notAfter,
      serial: serialOf(leaf.serialNumber),
      issuer: leaf.issuer,
      revocation: { ca: anchor.keyId, serial: serialOf(top.serialNumber) },
    };
    const all = [leaf, ...path, anchor.cert];
    remember({
      anchorDer: derOf(anchor.cert),
      anchorKeyId: anchor.keyId,
      topSerial: serialOf(top.serialNumber),
      notBefore: Math.max(...all.map((c) => c.notBefore.getTime())),
      notAfter: Math.min(...all.map((c) => c.notAfter.getTime())),
      identity,
    });
    return identity;
  }

  /**
   * The path from `leaf` to a CA of the bundle, through `extra` (intermediates the peer sent):
   * the anchor reached and `top`, the certificate of the path it signed (the one its CRL
   * covers: the leaf, or the topmost intermediate); or throws.
   */
  async #path(
    leaf: x509.X509Certificate,
    extra: x509.X509Certificate[],
    who: string,
    now: Date,
  ): Promise<{ anchor: Anchor; top: x509.X509Certificate; path: x509.X509Certificate[] }> {
    const signedBy = async (c: x509.X509Certificate, by: x509.X509Certificate) =>
      mayHaveIssued(c, by) &&
      await c.verify({ publicKey: by.publicKey, signatureOnly: true }).catch(() => false);
    let current = leaf;
    const used = new Set<x509.X509Certificate>();
    for (let below = 0; below <= MAX_INTERMEDIATES; below++) {
      // `below`: intermediates between the leaf and the issuer being looked for.
      for (const a of this.#anchors) {
        if (!(await signedBy(current, a.cert))) continue;
        this.#checkIssuer(a.cert, below, "the realm CA", who, now);
        return { anchor: a, top: current, path: [...used] };
      }
      const next = await (async () => {
        for (const c of extra) if (!used.has(c) && await signedBy(current, c)) return c;
        return undefined;
      })();
      if (!next) break;
      this.#checkIssuer(next, below, `intermediate ${JSON.stringify(next.subject)}`, who, now);
      used.add(next);
      current = next;
    }
    // Named and identified as a CA of the bundle, but its signature fails: altered in transit.
    const named = this.#anchors.some((a) => mayHaveIssued(current, a.cert));
    if (named && current === leaf) {
      throw new IdentityError("bad-signature", `${who}: the realm CA's signature does not verify`);
    }
    throw new IdentityError(
      "unknown-ca",
      `${who} is issued by ${JSON.stringify(current.issuer)}, not by the realm CA` +
        (current === leaf ? "" : ` (through ${used.size} intermediate certificates)`),
    );
  }

  /** An issuer in a path: a CA that may sign, within its path length and validity. */
  #checkIssuer(c: x509.X509Certificate, below: number, what: string, who: string, now: Date) {
    const bc = c.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) throw new IdentityError("unknown-ca", `${who}: ${what} is not a CA`);
    const ku = c.getExtension(x509.KeyUsagesExtension);
    if (!ku || !(ku.usages & x509.KeyUsageFlags.keyCertSign)) {
      throw new IdentityError("unknown-ca", `${who}: ${what} may not sign certificates (keyUsage)`);
    }
    const crit = unknownCritical(c.extensions, KNOWN_CERT_EXTENSIONS);
    if (crit) {
      throw new IdentityError(
        "unknown-ca",
        `${who}: ${what} has an unsupported critical extension ${crit}`,
      );
    }
    if (bc.pathLength !== undefined && below > bc.pathLength) {
      throw new IdentityError(
        "unknown-ca",
        `${who}: ${what} allows ${bc.pathLength} intermediate certificates below it (pathLenConstraint), the chain has ${below}`,
      );
    }
    if (now < c.notBefore || now > c.notAfter) {
      throw new IdentityError(
        "expired",
        `${who}: ${what} is valid from ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}`,
      );
    }
  }

  /**
   * A `checkPeer` for `QuicEndpoint`: verifies the chain and stores the identity in
   * `conn.context`, or throws the `IdentityError` (the peer is refused with its message).
   */
  checkPeer(): (chain: Uint8Array[], conn: { context: unknown }) => Promise<void> {
    return async (chain, conn) => {
      conn.context = await this.verify(chain);
    };
  }
}
