/**
 * Checking a peer: given the certificate chain a QUIC handshake delivered (DER, leaf first),
 * return who the peer is — node id, realm, groups, expiry — or say precisely why not.
 *
 * TLS has already verified the chain against the endpoint's CA; this checks it again (so the
 * answer does not depend on how TLS was configured) and adds what TLS does not know: the realm,
 * the node id bound to the key, groups, and revocation (a CRL signed by the realm CA, reloadable).
 */
import { commonName, sanUris } from "./certificates.ts";
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
  /** Certificate serial number, hex. */
  serial: string;
}

/** What a verifier trusts. */
export interface VerifierOptions {
  /** The realm CA certificate (PEM or DER). */
  ca: string | Uint8Array;
  /** The realm peers must belong to; default: the one in the CA's `macula://<realm>/ca` SAN. */
  realm?: string;
  /** A CRL signed by the CA (PEM or DER); replace it later with `loadCrl`. */
  crl?: string | Uint8Array;
}

/** PEM text as is; bytes copied into a plain ArrayBuffer, as @peculiar/x509 wants. */
const asn = (v: string | Uint8Array): string | Uint8Array<ArrayBuffer> =>
  typeof v === "string" ? v : Uint8Array.from(v);

/** Checks peers against one realm CA. */
export class Verifier {
  readonly realm: string;
  readonly ca: x509.X509Certificate;
  #revoked = new Set<string>();
  #crlNextUpdate: Date | null = null;

  private constructor(ca: x509.X509Certificate, realm: string) {
    this.ca = ca;
    this.realm = realm;
  }

  /** Builds a verifier; rejects when the CA certificate or CRL is unusable. */
  static async create(opts: VerifierOptions): Promise<Verifier> {
    let ca: x509.X509Certificate;
    try {
      ca = new x509.X509Certificate(asn(opts.ca));
    } catch (e) {
      throw new IdentityError(
        "bad-certificate",
        `cannot parse the CA certificate: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const bc = ca.getExtension(x509.BasicConstraintsExtension);
    if (!bc?.ca) {
      throw new IdentityError("unknown-ca", "the CA certificate is not a CA (basicConstraints)");
    }
    const caRealms = sanUris(ca).map(parseMaculaUri).filter((u) => u?.kind === "ca").map((u) =>
      u!.realm
    );
    const realm = opts.realm ?? caRealms[0];
    if (!realm) {
      throw new IdentityError(
        "wrong-realm",
        "no realm given and the CA certificate names none (macula://<realm>/ca)",
      );
    }
    checkRealm(realm);
    if (caRealms.length > 0 && !caRealms.includes(realm)) {
      throw new IdentityError(
        "wrong-realm",
        `the CA is for realm ${caRealms.join(", ")}, not ${realm}`,
      );
    }
    const v = new Verifier(ca, realm);
    if (opts.crl) await v.loadCrl(opts.crl);
    return v;
  }

  /** Replaces the revocation list; rejects a CRL not signed by this CA. */
  async loadCrl(crl: string | Uint8Array): Promise<void> {
    let parsed: x509.X509Crl;
    try {
      parsed = new x509.X509Crl(asn(crl));
    } catch (e) {
      throw new IdentityError("bad-certificate", `cannot parse the CRL: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (!(await parsed.verify({ publicKey: this.ca.publicKey }))) {
      throw new IdentityError("bad-signature", "the CRL is not signed by the realm CA");
    }
    this.#revoked = new Set(parsed.entries.map((e) => e.serialNumber.toLowerCase()));
    this.#crlNextUpdate = parsed.nextUpdate ?? null;
  }

  /** Serial numbers currently revoked (hex, lowercase). */
  get revoked(): ReadonlySet<string> {
    return this.#revoked;
  }

  /** When the loaded CRL says a newer one is due (null without a CRL or without nextUpdate). */
  get crlNextUpdate(): Date | null {
    return this.#crlNextUpdate;
  }

  /** Verifies a chain (DER, leaf first; or one PEM/DER certificate) and returns the identity. */
  async verify(chain: Uint8Array[] | string | Uint8Array, now = new Date()): Promise<PeerIdentity> {
    const leafData = Array.isArray(chain) ? chain[0] : chain;
    if (leafData === undefined) {
      throw new IdentityError("bad-certificate", "the peer presented no certificate");
    }
    let leaf: x509.X509Certificate;
    try {
      leaf = new x509.X509Certificate(asn(leafData));
    } catch (e) {
      throw new IdentityError(
        "bad-certificate",
        `cannot parse the peer's certificate: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const who = `certificate ${JSON.stringify(commonName(leaf))} (serial ${leaf.serialNumber})`;
    if (leaf.issuer !== this.ca.subject) {
      throw new IdentityError(
        "unknown-ca",
        `${who} is issued by ${JSON.stringify(leaf.issuer)}, not by the realm CA`,
      );
    }
    let ok = false;
    try {
      ok = await leaf.verify({ publicKey: this.ca.publicKey, signatureOnly: true });
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new IdentityError("bad-signature", `${who}: the realm CA's signature does not verify`);
    }
    if (now < leaf.notBefore) {
      throw new IdentityError(
        "not-yet-valid",
        `${who} is not valid before ${leaf.notBefore.toISOString()}`,
      );
    }
    if (now > leaf.notAfter) {
      throw new IdentityError("expired", `${who} expired on ${leaf.notAfter.toISOString()}`);
    }
    if (this.#revoked.has(leaf.serialNumber.toLowerCase())) {
      throw new IdentityError("revoked", `${who} is revoked by the realm's CRL`);
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
    return {
      nodeId: id,
      nodeIdBytes: idBytes,
      realm: node.realm,
      role: node.kind,
      groups,
      name: commonName(leaf),
      notAfter: leaf.notAfter,
      serial: leaf.serialNumber.toLowerCase(),
    };
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
