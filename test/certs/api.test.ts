/**
 * The realm CA (lib/identity) and certs-tool as a library: durations, CA creation and loading,
 * issuing, verification with each failure class, revocation, and writes that leave nothing
 * behind on failure.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  describeCert,
  DurationError,
  parseDuration,
  VERIFY_EXIT_CODES,
  verifyCert,
} from "../../certs-tool/mod.ts";
import {
  type Ca,
  CertsError,
  FileError,
  formatDuration,
  initCa,
  issueCert,
  loadCa,
  normalizeSerial,
  revoke,
  signCsr,
} from "../../lib/identity/mod.ts";
import { nodeIdFromSpki, nodeIdText } from "../../lib/identity/names.ts";
import { x509 } from "../../lib/identity/x509.ts";
import { craft, spkiOf } from "./craft.ts";
import { run } from "../helpers/run.ts";

const DAY = 86_400_000;
const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "macula-certs-api-"));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("parseDuration", () => {
  test("accepts hours, days, minutes, weeks, years and combinations", () => {
    expect(parseDuration("8760h")).toBe(365 * DAY);
    expect(parseDuration("30d")).toBe(30 * DAY);
    expect(parseDuration("90m")).toBe(90 * 60_000);
    expect(parseDuration("1d12h")).toBe(1.5 * DAY);
    expect(parseDuration("2w")).toBe(14 * DAY);
    expect(parseDuration("1y")).toBe(365 * DAY);
    expect(formatDuration(29 * DAY + 3 * 3_600_000)).toBe("29d 3h");
  });

  test.each(["", "10", "h", "10q", "-5d", "1.5.5h", "5 d x", "10s", "101y"])(
    "rejects %p with a clear message",
    (text) => {
      expect(() => parseDuration(text)).toThrow(DurationError);
      expect(() => parseDuration(text)).toThrow(/invalid duration/);
    },
  );
});

describe("realm CA", () => {
  test.each(["ed25519", "p256"] as const)(
    "%s: init writes ca.pem and a 0600 ca.key; load reads them back",
    async (keyType) => {
      const dir = join(await tmp(), "ca");
      const r = await initCa({
        realm: "com.acme.prod",
        outDir: dir,
        durationMs: 365 * DAY,
        keyType,
      });
      expect((await stat(join(dir, "ca.key"))).mode & 0o777).toBe(0o600);
      expect(r.ca.cert.subject).toBe("CN=Macula realm CA com.acme.prod, O=Macula");
      const ca = await loadCa(dir);
      expect(ca.realm).toBe("com.acme.prod");
      expect(ca.type).toBe(keyType);
      const info = describeCert(ca.pem).info;
      expect(info.isCa).toBe(true);
      expect(info.pathLength).toBe(0);
      expect(info.keyUsage).toEqual(["keyCertSign", "cRLSign"]);
      expect(info.uris).toEqual(["macula://com.acme.prod/ca"]);
      expect((await readdir(dir)).sort()).toEqual(["ca.key", "ca.pem"]); // no temp files left
    },
  );

  test("refuses to overwrite without force, and leaves the old CA untouched", async () => {
    const dir = await tmp();
    await initCa({ realm: "acme", outDir: dir, durationMs: DAY * 40 });
    const before = await readFile(join(dir, "ca.pem"), "utf8");
    await expect(initCa({ realm: "acme", outDir: dir, durationMs: DAY * 40 })).rejects.toThrow(
      /already exists/,
    );
    expect(await readFile(join(dir, "ca.pem"), "utf8")).toBe(before);
    await initCa({ realm: "acme", outDir: dir, durationMs: DAY * 40, force: true });
    expect(await readFile(join(dir, "ca.pem"), "utf8")).not.toBe(before);
  });

  test("a failed write leaves nothing behind", async () => {
    const root = await tmp();
    await writeFile(join(root, "file"), "x");
    await expect(
      initCa({ realm: "acme", outDir: join(root, "file", "ca"), durationMs: DAY * 40 }),
    ).rejects.toThrow(FileError);
    expect(await readdir(root)).toEqual(["file"]);
  });

  test("an encrypted key needs the right passphrase", async () => {
    const dir = await tmp();
    await initCa({ realm: "acme", outDir: dir, durationMs: DAY * 40, passphrase: "correct horse" });
    const key = await readFile(join(dir, "ca.key"), "utf8");
    expect(key).toContain("-----BEGIN ENCRYPTED PRIVATE KEY-----");
    await expect(loadCa(dir)).rejects.toThrow(/is encrypted: give the passphrase/);
    await expect(loadCa(dir, "wrong horse")).rejects.toThrow(/wrong passphrase for/);
    expect((await loadCa(dir, "correct horse")).realm).toBe("acme");
  });

  test("a key that does not belong to the certificate is refused", async () => {
    const a = await tmp();
    const b = await tmp();
    await initCa({ realm: "acme", outDir: a, durationMs: DAY * 40 });
    await initCa({ realm: "acme", outDir: b, durationMs: DAY * 40 });
    await writeFile(join(a, "ca.key"), await readFile(join(b, "ca.key")));
    await expect(loadCa(a)).rejects.toThrow(/does not belong to the certificate/);
  });

  test("bad realm syntax is refused before anything is written", async () => {
    const dir = join(await tmp(), "ca");
    await expect(initCa({ realm: "Acme!", outDir: dir, durationMs: DAY })).rejects.toThrow(
      /invalid realm/,
    );
    await expect(stat(dir)).rejects.toThrow();
  });
});

describe("issuing and verifying", async () => {
  const dir = await tmp();
  const ca = (await initCa({ realm: "acme", outDir: dir, durationMs: 365 * DAY })).ca;
  const other = (await initCa({ realm: "acme", durationMs: 365 * DAY })).ca;
  const beta = (await initCa({ realm: "beta", durationMs: 365 * DAY })).ca;
  const ok = await issueCert({ ca, name: "n1", groups: ["ops"], durationMs: 30 * DAY * 3 });

  function check(certPem: string, opts: { realm?: string; crlPem?: string; with?: Ca } = {}) {
    return verifyCert({
      caPem: (opts.with ?? ca).pem,
      certPem,
      ...(opts.realm ? { realm: opts.realm } : {}),
      ...(opts.crlPem ? { crlPem: opts.crlPem } : {}),
    });
  }

  test("a fresh certificate verifies; node id is SHA-256 of its SPKI in base32", async () => {
    const r = await check(ok.pem, { realm: "acme" });
    expect(r.class).toBe("ok");
    expect(r.code).toBe(0);
    expect(ok.nodeId).toBe(nodeIdText(nodeIdFromSpki(spkiOf(ok.pem))));
    expect(ok.nodeId).toMatch(/^[a-z2-7]{52}$/);
    expect(r.cert?.groups).toEqual(["ops"]);
    expect(ok.keyPem).toContain("BEGIN PRIVATE KEY");
  });

  test("expired", async () => {
    const past = await issueCert({
      ca,
      name: "old",
      notBefore: new Date(Date.now() - 10 * DAY),
      durationMs: DAY,
    });
    const r = await check(past.pem);
    expect([r.class, r.code]).toEqual(["expired", VERIFY_EXIT_CODES.expired]);
    expect(r.message).toContain("the certificate expired on");
  });

  test("not yet valid", async () => {
    const future = await issueCert({
      ca,
      name: "later",
      notBefore: new Date(Date.now() + 10 * DAY),
      durationMs: DAY,
    });
    const r = await check(future.pem);
    expect([r.class, r.code]).toEqual(["not-yet-valid", 4]);
    expect(r.message).toContain("not valid until");
  });

  test("another CA with the same realm and name: untrusted (bad signature)", async () => {
    const r = await check(ok.pem, { with: other });
    expect([r.class, r.code]).toEqual(["untrusted", 5]);
    expect(r.message).toContain("signature does not verify");
  });

  test("a tampered byte: untrusted", async () => {
    const der = Buffer.from(ok.pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 70]! ^= 0x01; // inside the signed part
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString("base64")}\n-----END CERTIFICATE-----`;
    const r = await check(pem);
    expect([r.class, r.code]).toEqual(["untrusted", 5]);
  });

  test("wrong realm: --realm other, and a URI naming another realm", async () => {
    const r1 = await check(ok.pem, { realm: "other" });
    expect([r1.class, r1.code]).toEqual(["wrong-realm", 6]);
    expect(r1.message).toContain("is for realm acme, not other");
    const aligned = await craftFor(ca, "beta");
    const r3 = await check(aligned);
    expect([r3.class, r3.code]).toEqual(["wrong-realm", 6]);
    expect(r3.message).toContain("names realm beta but the CA is for realm acme");
    // the CA of realm beta does not accept acme's certificates at all
    expect((await check(ok.pem, { with: beta })).class).toBe("untrusted");
  });

  test("revoked via a CRL signed by the CA", async () => {
    const victim = await issueCert({ ca, name: "victim", durationMs: 30 * DAY });
    const crlPath = join(dir, "crl.pem");
    const r1 = await revoke({ ca, certs: [victim.pem], crlPath });
    expect(r1.number).toBe("1");
    const r = await check(victim.pem, { crlPem: await readFile(crlPath, "utf8") });
    expect([r.class, r.code]).toEqual(["revoked", 7]);
    expect(r.message).toContain(`serial ${victim.serial} was revoked`);
    // adding keeps the earlier entry and bumps the CRL number
    const r2 = await revoke({ ca, serials: ["00:" + "ab".repeat(8)], crlPath });
    expect(r2.number).toBe("2");
    expect(r2.revoked.sort()).toEqual([victim.serial, normalizeSerial("ab".repeat(8))].sort());
    // other certificates still pass with the CRL
    expect((await check(ok.pem, { crlPem: await readFile(crlPath, "utf8") })).ok).toBe(true);
    // openssl agrees
    const o = await run([
      "openssl",
      "verify",
      "-crl_check",
      "-CRLfile",
      crlPath,
      "-CAfile",
      join(dir, "ca.pem"),
      await writeTmp(victim.pem),
    ]);
    expect(o.stdout + o.stderr).toContain("certificate revoked");
  });

  test("a CRL from another CA is refused; so is revoking another CA's certificate", async () => {
    const foreign = join(await tmp(), "crl.pem");
    await revoke({ ca: other, serials: ["01"], crlPath: foreign });
    await expect(check(ok.pem, { crlPem: await readFile(foreign, "utf8") })).rejects.toThrow(
      /not signed by this CA/,
    );
    const mine = await issueCert({ ca: other, name: "x", durationMs: DAY * 40 });
    await expect(revoke({ ca, certs: [mine.pem], crlPath: join(dir, "crl2.pem") })).rejects
      .toThrow(/was not issued by this CA/);
  });

  test("node id mismatch, missing SAN, CA flag, key usage: bad profile", async () => {
    const id = nodeIdText(new Uint8Array(32));
    const mismatch = await check(await craft(ca, { uris: [`macula://acme/node/${id}`] }));
    expect([mismatch.class, mismatch.code]).toEqual(["bad-profile", 8]);
    expect(mismatch.message).toContain("node id mismatch");
    const noSan = await check(await craft(ca));
    expect(noSan.message).toContain("missing SAN");
    expect(noSan.code).toBe(8);
    const asCa = await check(ca.pem);
    expect(asCa.class).toBe("bad-profile");
    const noEku = await check(await craftFor(ca, "acme", { eku: ["1.3.6.1.5.5.7.3.1"] }));
    expect(noEku.message).toContain("needs serverAuth and clientAuth");
  });

  test("duration is cut to the CA's expiry, and near-expiry warnings appear", async () => {
    const shortCa = (await initCa({ realm: "acme", durationMs: 20 * DAY })).ca;
    const r = await issueCert({ ca: shortCa, name: "n", durationMs: 90 * DAY });
    expect(r.capped).toBe(true);
    expect(r.notAfter.getTime()).toBe(shortCa.cert.notAfter.getTime());
    expect(r.warnings.join("\n")).toMatch(
      /warning: the CA for realm acme expires in (19d 23h|20d)/,
    );
    expect(r.warnings.join("\n")).toContain("warning: certificate n expires in");
    expect(describeCert(r.pem).warnings[0]).toContain("expires in");
  });

  test("--in-pub style: only the given public key is signed", async () => {
    const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    const pem = `-----BEGIN PUBLIC KEY-----\n${
      Buffer.from(spki).toString("base64")
    }\n-----END PUBLIC KEY-----\n`;
    const r = await issueCert({ ca, name: "remote", publicKeyPem: pem, durationMs: DAY * 40 });
    expect(r.keyPem).toBeUndefined();
    expect(Buffer.from(spkiOf(r.pem)).equals(Buffer.from(spki))).toBe(true);
    await expect(issueCert({ ca, name: "x", publicKeyPem: "junk", durationMs: DAY })).rejects
      .toThrow(CertsError);
  });

  test("a garbage CSR is refused clearly", async () => {
    await expect(signCsr({ ca, csrPem: "nope", durationMs: DAY })).rejects.toThrow(
      /not a readable PKCS#10/,
    );
  });
});

/** A crafted certificate whose node URI is consistent with its key, in `realm`. */
async function craftFor(ca: Ca, realm: string, extra: { eku?: string[] } = {}): Promise<string> {
  // craft() makes its own key, so take its extensions and re-sign them for a key whose hash is
  // in the URI.
  const { X509CertificateGenerator, X509Certificate, SubjectAlternativeNameExtension } = x509;
  const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const uri = `macula://${realm}/node/${nodeIdText(nodeIdFromSpki(spki))}`;
  const base = new X509Certificate(await craft(ca, { uris: [uri], ...extra }));
  const cert = await X509CertificateGenerator.create({
    serialNumber: "42",
    subject: "CN=crafted",
    issuer: ca.cert.subjectName,
    notBefore: base.notBefore,
    notAfter: base.notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: { name: "Ed25519" },
    extensions: [
      ...base.extensions.filter((e) => !(e instanceof SubjectAlternativeNameExtension)),
      new SubjectAlternativeNameExtension([{ type: "url", value: uri }]),
    ],
  });
  return cert.toString("pem");
}

async function writeTmp(pem: string): Promise<string> {
  const p = join(await tmp(), "c.pem");
  await writeFile(p, pem);
  return p;
}

describe("what nodes check (lib/identity/verify.ts) agrees with certs-tool", () => {
  test("accepts an issued certificate, refuses it once our CRL lists it", async () => {
    const { Verifier } = await import("../../lib/identity/verify.ts");
    const dir = await tmp();
    const ca = (await initCa({ realm: "acme", outDir: dir, durationMs: 365 * DAY })).ca;
    const n = await issueCert({ ca, name: "n", groups: ["ops"], durationMs: 30 * DAY });
    const v = await Verifier.create({ ca: ca.pem });
    const peer = await v.verify(n.pem);
    expect(peer).toMatchObject({ nodeId: n.nodeId, realm: "acme", groups: ["ops"], name: "n" });
    const crlPath = join(dir, "crl.pem");
    await revoke({ ca, certs: [n.pem], crlPath });
    await v.loadCrl(await readFile(crlPath, "utf8"));
    await expect(v.verify(n.pem)).rejects.toThrow(/revoked/);
  });
});
