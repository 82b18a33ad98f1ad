import { describe, expect, test } from "bun:test";
import { issue, makeCa } from "../../lib/identity/devca.ts";
import { x509 } from "../../lib/identity/x509.ts";
import {
  base32,
  checkRealm,
  isNodeIdText,
  nodeIdFromSpki,
  nodeIdFromText,
  nodeIdText,
  parseMaculaUri,
  realmProblem,
  realmTagHex,
} from "../../lib/identity/names.ts";
import { IdentityError } from "../../lib/identity/errors.ts";
import { verifiedCache, Verifier } from "../../lib/identity/verify.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { closingEndpoints } from "../helpers/quic.ts";

const DAY = 86_400_000;

async function refused(p: Promise<unknown>): Promise<IdentityError> {
  const e = await p.then(() => null, (err) => err);
  expect(e).toBeInstanceOf(IdentityError);
  return e as IdentityError;
}

describe("names", () => {
  test("node id text round-trips to its 32 bytes; anything else is refused", () => {
    for (let i = 0; i < 200; i++) {
      const id = crypto.getRandomValues(new Uint8Array(32));
      expect(nodeIdFromText(nodeIdText(id))).toEqual(id);
    }
    expect(() => nodeIdFromText("abc")).toThrow("not a node id");
    expect(() => nodeIdFromText("A".repeat(52))).toThrow("not a node id");
  });

  test("realm syntax: lowercase DNS-like labels, with the broken rule named", () => {
    for (const ok of ["acme", "com.acme.prod", "a-1.b2", "x".repeat(63)]) {
      expect(realmProblem(ok)).toBeNull();
    }
    expect(realmProblem("")).toContain("empty");
    expect(realmProblem("Acme")).toContain("a-z");
    expect(realmProblem("-acme")).toContain("not at either end");
    expect(realmProblem("a..b")).toContain('""');
    expect(realmProblem("x".repeat(64))).toContain("1-63");
    expect(realmProblem("a.".repeat(9) + "a")).toContain("labels");
    expect(() => checkRealm("bad realm")).toThrow('invalid realm "bad realm"');
  });

  test("realm tag: 8 bytes, stable, different per realm", () => {
    expect(realmTagHex("acme")).toMatch(/^[0-9a-f]{16}$/);
    expect(realmTagHex("acme")).toBe(realmTagHex("acme"));
    expect(realmTagHex("acme")).not.toBe(realmTagHex("acme2"));
  });

  test("node id: SHA-256 of the SPKI, base32 text of 52 characters (RFC 4648 vectors)", () => {
    expect(base32(new TextEncoder().encode("foobar"))).toBe("mzxw6ytboi");
    expect(base32(new TextEncoder().encode("f"))).toBe("my");
    const id = nodeIdFromSpki(new Uint8Array([1, 2, 3]));
    expect(id.length).toBe(32);
    expect(isNodeIdText(base32(id))).toBe(true);
  });

  test("macula URIs parse, and malformed ones do not", () => {
    const id = "a".repeat(52);
    expect(parseMaculaUri(`macula://acme/node/${id}`)).toEqual({
      kind: "node",
      realm: "acme",
      nodeId: id,
    });
    expect(parseMaculaUri("macula://acme/group/ops")).toEqual({
      kind: "group",
      realm: "acme",
      group: "ops",
    });
    expect(parseMaculaUri("macula://acme/ca")).toEqual({ kind: "ca", realm: "acme" });
    for (
      const bad of [
        "macula://ACME/ca",
        "macula://acme/node/xyz",
        "https://acme/ca",
        "macula://acme/group/",
      ]
    ) {
      expect(parseMaculaUri(bad)).toBeNull();
    }
  });
});

describe("verifying a peer's certificate", () => {
  test("a good certificate yields node id, realm, groups, name and expiry", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    const c = await issue(ca, { name: "edge-1", groups: ["ops", "sensors"] });
    const v = await Verifier.create({ ca: ca.pem });
    const who = await v.verify(c.cert);
    expect(who.realm).toBe("acme");
    expect(who.groups).toEqual(["ops", "sensors"]);
    expect(who.name).toBe("edge-1");
    expect(isNodeIdText(who.nodeId)).toBe(true);
    const spki = new x509.X509Certificate(c.cert).publicKey.rawData;
    expect(who.nodeIdBytes).toEqual(nodeIdFromSpki(new Uint8Array(spki)));
    expect(who.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  test("every refusal says why", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    const v = await Verifier.create({ ca: ca.pem });
    const other = await makeCa("ed25519", "other-ca", "acme");
    expect((await refused(v.verify((await issue(other)).cert))).code).toBe("unknown-ca");

    const expired = await issue(ca, {
      notBefore: new Date(Date.now() - 3 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const e1 = await refused(v.verify(expired.cert));
    expect(e1.code).toBe("expired");
    expect(e1.message).toContain("expired on");

    const future = await issue(ca, {
      notBefore: new Date(Date.now() + DAY),
      notAfter: new Date(Date.now() + 2 * DAY),
    });
    expect((await refused(v.verify(future.cert))).code).toBe("not-yet-valid");

    const wrongRealm = await issue(ca, { realm: "globex" });
    const e2 = await refused(v.verify(wrongRealm.cert));
    expect(e2.code).toBe("wrong-realm");
    expect(e2.message).toContain("belongs to realm globex, not acme");

    const noSan = await issue(await makeCa("ed25519", "acme-ca2"), {});
    const v2 = await Verifier.create({ ca: (await makeCa("ed25519", "x", "acme")).pem });
    expect((await refused(v2.verify(noSan.cert))).code).toBe("unknown-ca");

    const mismatch = await issue(ca, { nodeIdOverride: "b".repeat(52) });
    const e3 = await refused(v.verify(mismatch.cert));
    expect(e3.code).toBe("node-id-mismatch");
    expect(e3.message).toContain("but its key hashes to");

    expect((await refused(v.verify([]))).code).toBe("bad-certificate");
    expect((await refused(v.verify("not a certificate"))).code).toBe("bad-certificate");
  });

  test("a certificate without the node URI is refused: missing-san", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    const v = await Verifier.create({ ca: ca.pem });
    // Issued for no realm at all: the CA's realm is dropped on purpose.
    const bare = await issue({ ...ca, realm: undefined });
    expect((await refused(v.verify(bare.cert))).code).toBe("missing-san");
  });

  test("a tampered certificate fails its signature", async () => {
    const ca = await makeCa("p256", "acme-ca", "acme");
    const v = await Verifier.create({ ca: ca.pem });
    const der = new Uint8Array(new x509.X509Certificate((await issue(ca)).cert).rawData);
    // Flip a byte inside the subject's common name ("node"), keeping the DER well formed.
    const at = Buffer.from(der).indexOf(Buffer.from("node"));
    der[at] = "m".charCodeAt(0);
    expect((await refused(v.verify(der))).code).toBe("bad-signature");
  });

  test("revocation: a CRL signed by the CA refuses its serials; a foreign CRL is rejected", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    const good = await issue(ca, { name: "good" });
    const bad = await issue(ca, { name: "bad" });
    const crl = await x509.X509CrlGenerator.create({
      issuer: ca.cert.subject,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + DAY),
      entries: [{
        serialNumber: new x509.X509Certificate(bad.cert).serialNumber,
        revocationDate: new Date(),
      }],
      signingKey: ca.keys.privateKey,
      signingAlgorithm: { name: "Ed25519" },
    });
    const v = await Verifier.create({ ca: ca.pem, crl: crl.toString("pem") });
    expect((await v.verify(good.cert)).name).toBe("good");
    const e = await refused(v.verify(bad.cert));
    expect(e.code).toBe("revoked");
    const other = await makeCa("ed25519", "acme-ca", "acme");
    const foreign = await x509.X509CrlGenerator.create({
      issuer: other.cert.subject,
      thisUpdate: new Date(),
      entries: [],
      signingKey: other.keys.privateKey,
      signingAlgorithm: { name: "Ed25519" },
    });
    expect((await refused(v.loadCrl(foreign.toString("pem")))).code).toBe("bad-signature");
    // A CRL replaces the one held only when newer (its cRLNumber): an old or unnumbered CRL
    // replayed cannot lift a revocation; a newer one that no longer lists the serial does.
    const empty = (n?: number) =>
      x509.X509CrlGenerator.create({
        issuer: ca.cert.subject,
        thisUpdate: new Date(),
        // (@peculiar/x509 2.2 leaves the extensions out of a CRL without nextUpdate.)
        nextUpdate: new Date(Date.now() + DAY),
        entries: [],
        signingKey: ca.keys.privateKey,
        signingAlgorithm: { name: "Ed25519" },
        extensions: n === undefined
          ? []
          : [new x509.Extension("2.5.29.20", false, new Uint8Array([0x02, 0x01, n]))],
      });
    const replay = await v.loadCrl((await empty()).toString("pem"));
    expect(replay.accepted).toBe(false);
    expect(replay.reason).toBe("not newer than the CRL held (number none, held none)");
    expect((await refused(v.verify(bad.cert))).code).toBe("revoked");
    const newer = await v.loadCrl((await empty(5)).toString("pem"));
    expect(newer).toMatchObject({ accepted: true, number: 5n, revoked: 0 });
    expect((await v.verify(bad.cert)).name).toBe("bad");
    expect((await v.loadCrl((await empty(4)).toString("pem"))).accepted).toBe(false);
    expect((await v.loadCrl((await empty(5)).toString("pem"))).accepted).toBe(false);
  });

  test("a chain that passed is remembered; a CRL, the clock and another CA still refuse it", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    const c = await issue(ca, {
      name: "cached",
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + DAY),
    });
    const v = await Verifier.create({ ca: ca.pem });
    const first = await v.verify(c.cert);
    const hits = verifiedCache().hits;
    // Another verifier of the same CA (another node in this process) takes it from the cache.
    const v2 = await Verifier.create({ ca: ca.pem });
    expect(await v2.verify(c.cert)).toEqual(first);
    expect(verifiedCache().hits).toBe(hits + 1);
    // Past its end: the full check runs, and says why.
    expect((await refused(v.verify(c.cert, new Date(Date.now() + 2 * DAY)))).code).toBe("expired");
    // A CA with the same name but another key does not trust it.
    const other = await Verifier.create({ ca: (await makeCa("ed25519", "acme-ca", "acme")).pem });
    expect((await refused(other.verify(c.cert))).code).toBe("unknown-ca");
    // Revoked after it was remembered: refused.
    const crl = await x509.X509CrlGenerator.create({
      issuer: ca.cert.subject,
      thisUpdate: new Date(),
      nextUpdate: new Date(Date.now() + DAY),
      entries: [{
        serialNumber: new x509.X509Certificate(c.cert).serialNumber,
        revocationDate: new Date(),
      }],
      signingKey: ca.keys.privateKey,
      signingAlgorithm: { name: "Ed25519" },
      extensions: [new x509.Extension("2.5.29.20", false, new Uint8Array([0x02, 0x01, 1]))],
    });
    expect((await v.loadCrl(crl.toString("pem"))).accepted).toBe(true);
    expect((await refused(v.verify(c.cert))).code).toBe("revoked");
    expect((await v2.verify(c.cert)).name).toBe("cached"); // v2 holds no CRL
  });

  test("a verifier for a realm the CA is not for is refused at creation", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    expect((await refused(Verifier.create({ ca: ca.pem, realm: "globex" }))).code).toBe(
      "wrong-realm",
    );
    const plain = await makeCa("ed25519", "plain");
    expect((await refused(Verifier.create({ ca: plain.pem }))).code).toBe("wrong-realm");
  });
});

describe("identity over QUIC", () => {
  const { track } = closingEndpoints();

  for (const type of ["ed25519", "p256"] as const) {
    test(`mutual TLS with realm certificates (${type}): each side learns the other's node id`, async () => {
      const ca = await makeCa(type, "acme-ca", "acme");
      const v = await Verifier.create({ ca: ca.pem });
      const s = await issue(ca, { name: "server", groups: ["infra"] });
      const c = await issue(ca, { name: "client", groups: ["ops"] });
      const server = track(
        await QuicEndpoint.bind({
          host: "127.0.0.1",
          tls: { ca: ca.pem, ...s },
          checkPeer: v.checkPeer(),
        }),
      );
      const client = track(
        await QuicEndpoint.bind({
          host: "127.0.0.1",
          acceptIncoming: false,
          tls: { ca: ca.pem, ...c },
          checkPeer: v.checkPeer(),
        }),
      );
      const accepted = server.accept();
      const conn = await client.connect(server.address);
      const sconn = (await accepted)!;
      expect(conn.context as { name: string; groups: string[] }).toMatchObject({
        name: "server",
        groups: ["infra"],
      });
      expect(sconn.context as { name: string; realm: string }).toMatchObject({
        name: "client",
        realm: "acme",
      });
    });
  }

  test("a peer of another realm under the same CA key is refused with the reason", async () => {
    const ca = await makeCa("ed25519", "acme-ca", "acme");
    const v = await Verifier.create({ ca: ca.pem });
    const server = track(
      await QuicEndpoint.bind({
        host: "127.0.0.1",
        tls: { ca: ca.pem, ...(await issue(ca)) },
        checkPeer: v.checkPeer(),
      }),
    );
    const client = track(
      await QuicEndpoint.bind({
        host: "127.0.0.1",
        acceptIncoming: false,
        tls: { ca: ca.pem, ...(await issue(ca, { realm: "globex" })) },
      }),
    );
    // The server's check is asynchronous, so the refusal may come as connect() rejecting or as
    // the connection closing right after (docs/quic.md, "TLS and peer identity").
    const outcome = await client.connect(server.address).then(
      async (conn) => (await conn.closed).reason,
      (e: Error) => e.message,
    );
    expect(outcome).toContain("belongs to realm globex, not acme");
  });
});
