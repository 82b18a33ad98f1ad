/**
 * The Verifier's trust: a CA bundle (rotation: old and new CA together), CRLs per CA, and paths
 * through intermediates checked as RFC 5280 and `openssl verify` do (CA flag, keyCertSign, path
 * length, validity). Also over real QUIC on 127.0.0.1: peers of either CA of a bundle connect.
 */
import { describe, expect, test } from "bun:test";
import { type DevCa, issue, makeCa, tlsFor } from "../../lib/identity/devca.ts";
import { IdentityError } from "../../lib/identity/errors.ts";
import { signLeafCertificate } from "../../lib/identity/issuer.ts";
import { Verifier } from "../../lib/identity/verify.ts";
import { x509 } from "../../lib/identity/x509.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { closingEndpoints } from "../helpers/quic.ts";

const DAY = 86_400_000;
const { track } = closingEndpoints();
const bind = async (o: Parameters<typeof QuicEndpoint.bind>[0]) =>
  track(await QuicEndpoint.bind({ host: "127.0.0.1", ...o }));

async function refused(p: Promise<unknown>): Promise<IdentityError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof IdentityError) return e;
    throw e;
  }
  throw new Error("accepted");
}

/** A CA certificate signed by `by` (or self-signed), with the given constraints. */
async function caCert(
  name: string,
  by: { cert: x509.X509Certificate; key: CryptoKey } | null,
  o: {
    pathLength?: number;
    keyCertSign?: boolean;
    realm?: string;
    /** Key usages instead of keyCertSign + cRLSign; null: no keyUsage extension at all. */
    usages?: number | null;
    extra?: x509.Extension[];
  } = {},
) {
  const keys = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const usages = o.usages !== undefined
    ? o.usages
    : o.keyCertSign === false
    ? x509.KeyUsageFlags.digitalSignature
    : x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
  const exts: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, o.pathLength, true),
    ...(usages === null ? [] : [new x509.KeyUsagesExtension(usages, true)]),
    ...(o.extra ?? []),
  ];
  if (o.realm) {
    exts.push(
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `macula://${o.realm}/ca` }]),
    );
  }
  const common = {
    serialNumber: "01" + crypto.randomUUID().replaceAll("-", "").slice(0, 14),
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: { name: "Ed25519" },
    extensions: exts,
  };
  const cert = by
    ? await x509.X509CertificateGenerator.create({
      ...common,
      subject: `CN=${name}`,
      issuer: by.cert.subject,
      publicKey: keys.publicKey,
      signingKey: by.key,
    })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: `CN=${name}`, keys });
  return { cert, key: keys.privateKey };
}

async function leafOf(issuer: { cert: x509.X509Certificate; key: CryptoKey }) {
  const leaf = await signLeafCertificate(
    { cert: issuer.cert, privateKey: issuer.key, type: "ed25519" },
    {
      key: "ed25519",
      subject: "CN=leaf",
      realm: "acme",
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
    },
  );
  return new Uint8Array(leaf.cert.rawData);
}

const der = (c: x509.X509Certificate) => new Uint8Array(c.rawData);

/** A CRL numbered `n` signed by `by`, listing `serials`. */
function crlOf(by: { cert: x509.X509Certificate; key: CryptoKey }, serials: string[], n = 1) {
  return x509.X509CrlGenerator.create({
    issuer: by.cert.subject,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + DAY),
    entries: serials.map((serialNumber) => ({
      serialNumber,
      revocationDate: new Date(),
      reason: x509.X509CrlReason.keyCompromise,
    })),
    signingKey: by.key,
    signingAlgorithm: { name: "Ed25519" },
    extensions: [new x509.Extension("2.5.29.20", false, new Uint8Array([2, 1, n]))],
  }).then((c) => c.toString("pem"));
}

describe("CA bundles", () => {
  test("certificates of either CA of a bundle verify; each CA's CRL covers its own", async () => {
    const a = await makeCa("ed25519", "Macula realm CA acme", "acme");
    const b = await makeCa("ed25519", "Macula realm CA acme 2", "acme");
    const v = await Verifier.create({ ca: `${a.pem}\n${b.pem}` });
    expect(v.cas).toHaveLength(2);
    const fromA = await issue(a, { name: "old" });
    const fromB = await issue(b, { name: "new" });
    expect((await v.verify(fromA.cert)).name).toBe("old");
    expect((await v.verify(fromB.cert)).name).toBe("new");
    const crl = await x509.X509CrlGenerator.create({
      issuer: b.cert.subject,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + DAY),
      entries: [{
        serialNumber: new x509.X509Certificate(fromB.cert).serialNumber,
        revocationDate: new Date(),
      }],
      signingKey: b.keys.privateKey,
      signingAlgorithm: { name: "Ed25519" },
      extensions: [new x509.Extension("2.5.29.20", false, new Uint8Array([2, 1, 1]))],
    });
    expect(await v.loadCrl(crl.toString("pem"))).toMatchObject({ accepted: true, number: 1n });
    expect((await refused(v.verify(fromB.cert))).code).toBe("revoked");
    expect((await v.verify(fromA.cert)).name).toBe("old");
    expect(v.crls()).toEqual([{
      issuer: b.cert.subject,
      ca: Verifier.keyIdOf(b.cert),
      number: 1n,
      revoked: 1,
    }]);
  });

  test("a bundle must be CAs of one realm", async () => {
    const a = await makeCa("ed25519", "A", "acme");
    const other = await makeCa("ed25519", "B", "globex");
    expect((await refused(Verifier.create({ ca: a.pem + other.pem }))).message).toBe(
      "the CA bundle mixes realms acme, globex: one realm per bundle",
    );
    const leaf = await issue(a);
    expect((await refused(Verifier.create({ ca: a.pem + leaf.cert }))).message).toBe(
      "CA certificate 2 of 2 is not a CA (basicConstraints)",
    );
  });

  test("over QUIC: a server with the bundle accepts clients of both CAs, and its verifier too", async () => {
    const cas: DevCa[] = [
      await makeCa("ed25519", "Macula realm CA acme", "acme"),
      await makeCa("ed25519", "Macula realm CA acme (new)", "acme"),
    ];
    const bundle = cas.map((c) => c.pem).join("\n");
    const v = await Verifier.create({ ca: bundle });
    const server = await bind({
      tls: { ...(await tlsFor(cas[0]!)), ca: bundle },
      checkPeer: v.checkPeer(),
    });
    for (const ca of cas) {
      const client = await bind({
        acceptIncoming: false,
        tls: { ...(await tlsFor(ca)), ca: bundle },
      });
      const accepted = server.accept();
      const conn = await client.connect(server.address);
      const s = (await accepted)!;
      expect((s.context as { realm: string }).realm).toBe("acme");
      await conn.close(0, "done");
    }
  });
});

describe("paths through intermediates (RFC 5280)", () => {
  test("within path length: accepted; past it, or through a non-CA or non-signing issuer: refused", async () => {
    const root = await caCert("root", null, { realm: "acme" }); // no pathLen: any depth
    const mid = await caCert("mid", root, { pathLength: 0 });
    const v = await Verifier.create({ ca: root.cert.toString("pem") });
    const leaf = await leafOf(mid);
    expect((await v.verify([leaf, der(mid.cert)])).realm).toBe("acme");
    // Without the intermediate the path does not reach the root.
    expect((await refused(v.verify([leaf]))).message).toContain(
      'is issued by "CN=mid", not by the realm CA',
    );
    // mid allows no intermediate below it.
    const low = await caCert("low", mid, {});
    const e = await refused(v.verify([await leafOf(low), der(low.cert), der(mid.cert)]));
    expect(e.code).toBe("unknown-ca");
    expect(e.message).toContain(
      'intermediate "CN=mid" allows 0 intermediate certificates below it (pathLenConstraint), the chain has 1',
    );
    // An issuer that may not sign certificates.
    const noSign = await caCert("nosign", root, { keyCertSign: false });
    expect((await refused(v.verify([await leafOf(noSign), der(noSign.cert)]))).message).toContain(
      'intermediate "CN=nosign" may not sign certificates (keyUsage)',
    );
  });

  test("the realm CA's own path length holds too (Macula's CAs: pathlen 0, no intermediates)", async () => {
    const root = await caCert("root0", null, { realm: "acme", pathLength: 0 });
    const mid = await caCert("mid", root, {});
    const v = await Verifier.create({ ca: root.cert.toString("pem") });
    expect((await refused(v.verify([await leafOf(mid), der(mid.cert)]))).message).toContain(
      "the realm CA allows 0 intermediate certificates below it (pathLenConstraint), the chain has 1",
    );
  });
});

describe("rotation with CAs of one name, and what the CRLs cover", () => {
  test("two CAs of the same subject (as 'ca init' makes them): each CRL revokes only its own CA's certificates", async () => {
    const a = await makeCa("ed25519", "Macula realm CA acme", "acme");
    const b = await makeCa("ed25519", "Macula realm CA acme", "acme");
    const v = await Verifier.create({ ca: `${a.pem}\n${b.pem}` });
    const fromA = await issue(a, { name: "old" });
    const fromB = await issue(b, { name: "new" });
    const idA = await v.verify(fromA.cert);
    const idB = await v.verify(fromB.cert);
    expect(idA.revocation.ca).toBe(Verifier.keyIdOf(a.cert));
    expect(idB.revocation.ca).toBe(Verifier.keyIdOf(b.cert));
    // A's CRL lists the serial of B's certificate: it is A's number to list, not B's certificate.
    const got = await v.loadCrl(
      await crlOf({ cert: a.cert, key: a.keys.privateKey }, [idB.serial]),
    );
    expect(got).toMatchObject({ accepted: true, ca: Verifier.keyIdOf(a.cert) });
    expect(v.isRevoked(idB)).toBe(false);
    expect((await v.verify(fromB.cert)).name).toBe("new");
    // B's own CRL does revoke it, and is held beside A's (one per CA, told apart by key).
    await v.loadCrl(await crlOf({ cert: b.cert, key: b.keys.privateKey }, [idB.serial]));
    expect(v.isRevoked(idB)).toBe(true);
    expect((await refused(v.verify(fromB.cert))).code).toBe("revoked");
    expect(v.crls().map((c) => c.ca).sort()).toEqual(
      [Verifier.keyIdOf(a.cert), Verifier.keyIdOf(b.cert)].sort(),
    );
  });

  test("the realm CA's CRL revoking an intermediate refuses what it issued, on a live identity too", async () => {
    const root = await caCert("root", null, { realm: "acme" });
    const mid = await caCert("mid", root, {});
    const v = await Verifier.create({ ca: root.cert.toString("pem") });
    const chain = [await leafOf(mid), der(mid.cert)];
    const id = await v.verify(chain);
    expect(id.revocation.serial).toBe(mid.cert.serialNumber.toLowerCase().replace(/^0+/, ""));
    await v.loadCrl(await crlOf(root, [mid.cert.serialNumber]));
    expect(v.isRevoked(id)).toBe(true);
    const e = await refused(v.verify(chain));
    expect(e.code).toBe("revoked");
    expect(e.message).toContain('its intermediate CA "CN=mid"');
  });

  test("a CA without keyUsage, a CRL from a CA without cRLSign, an unknown critical extension: refused", async () => {
    const bare = await caCert("bare", null, { realm: "acme", usages: null });
    expect((await refused(Verifier.create({ ca: bare.cert.toString("pem") }))).message).toContain(
      "may not sign certificates (keyUsage missing",
    );
    const noCrl = await caCert("nocrl", null, {
      realm: "acme",
      usages: x509.KeyUsageFlags.keyCertSign,
    });
    const v = await Verifier.create({ ca: noCrl.cert.toString("pem") });
    expect((await refused(v.loadCrl(await crlOf(noCrl, ["01"])))).message).toContain(
      "may not sign CRLs (keyUsage without cRLSign)",
    );
    // An intermediate whose critical extension (here nameConstraints) this code does not apply.
    const root = await caCert("root", null, { realm: "acme" });
    const constrained = await caCert("constrained", root, {
      extra: [new x509.Extension("2.5.29.30", true, new Uint8Array([0x30, 0x00]))],
    });
    const vr = await Verifier.create({ ca: root.cert.toString("pem") });
    const e = await refused(vr.verify([await leafOf(constrained), der(constrained.cert)]));
    expect(e.message).toContain("unsupported critical extension 2.5.29.30");
  });
});
