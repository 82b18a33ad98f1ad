/**
 * `macula certs print` on each kind of file it shows: a CRL (what `certs revoke` writes: issuer,
 * CRL number, this and next update, each revoked serial with its date and reason; OpenSSL's
 * `crl -text` as the independent reading), a public key (`certs key`), a certificate request
 * (`openssl req`), a CA bundle, a certificate with its key in one file. Text and `--json`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCa, revoke, x509 } from "../../lib/identity/mod.ts";
import { type Result, run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const DAY = 86_400_000;
let dir = "";
let home = ""; // not dir: Bun may leave a cache folder in $HOME

function certs(...args: string[]): Promise<Result> {
  return run([process.execPath, MAIN, "certs", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
  });
}

async function ok(...args: string[]): Promise<Result> {
  const r = await certs(...args);
  expect([args, r.code, r.stderr]).toEqual([args, 0, ""]);
  return r;
}

const openssl = (...args: string[]) => run(["openssl", ...args], { cwd: dir });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "macula-certs-print-"));
  home = await mkdtemp(join(tmpdir(), "macula-certs-print-home-"));
  await ok("ca", "init", "--realm", "acme");
  await ok("issue", "--realm", "acme", "--name", "a");
  await ok("issue", "--realm", "acme", "--name", "b");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

interface Crl {
  kind: string;
  issuer: string;
  authorityKeyId: string;
  number: string;
  thisUpdate: string;
  nextUpdate: string;
  daysLeft: number;
  revoked: { serial: string; date: string; reason: string | null }[];
  sha256: string;
}

test("a CRL: issuer, number, updates, and each revoked serial with its date and reason", async () => {
  const a = JSON.parse((await ok("print", "--json", "a.crt")).stdout).serial as string;
  await ok("revoke", "--cert", "a.crt", "--reason", "keyCompromise");
  await ok("revoke", "--serial", "0x0BADC0DE", "--reason", "superseded");
  const j = JSON.parse((await ok("print", "--json", "macula-ca/crl.pem")).stdout) as Crl;
  const ca = new x509.X509Certificate(await readFile(join(dir, "macula-ca", "ca.pem"), "utf8"));
  expect(j).toMatchObject({
    kind: "crl",
    issuer: "CN=Macula realm CA acme, O=Macula",
    authorityKeyId: ca.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    number: "2",
  });
  expect(j.daysLeft).toBeGreaterThanOrEqual(29);
  expect(Date.parse(j.nextUpdate) - Date.parse(j.thisUpdate)).toBe(30 * DAY);
  expect(j.revoked.map((r) => [r.serial, r.reason])).toEqual([
    [a, "keyCompromise"],
    ["badc0de", "superseded"],
  ]);
  for (const r of j.revoked) expect(Date.parse(r.date)).toBeLessThanOrEqual(Date.now());
  expect(j.sha256).toMatch(/^[0-9a-f]{64}$/);

  // OpenSSL reads the same CRL the same way.
  const o = (await openssl("crl", "-in", "macula-ca/crl.pem", "-noout", "-text")).stdout;
  expect(o).toMatch(/X509v3 CRL Number:\s+2\b/);
  expect(o).toMatch(new RegExp(`Serial Number: 0?${a.toUpperCase()}[\\s\\S]*?Key Compromise`));
  expect(o).toMatch(/Serial Number: 0BADC0DE[\s\S]*?Superseded/);

  // The text says the same, one row per field and one line per revoked serial.
  const w = a.length;
  expect((await ok("print", "macula-ca/crl.pem")).stdout).toBe(
    [
      "kind        CRL",
      `issuer      ${j.issuer}`,
      `key id      ${j.authorityKeyId}`,
      "number      2",
      `this update ${j.thisUpdate}`,
      `next update ${j.nextUpdate} (${j.daysLeft} days left)`,
      "revoked     2",
      `  ${a.padEnd(w)}  ${j.revoked[0]!.date}  keyCompromise`,
      `  ${"badc0de".padEnd(w)}  ${j.revoked[1]!.date}  superseded`,
      `sha256      ${j.sha256}`,
      "",
    ].join("\n"),
  );
});

test("a CRL past its next update: shown as overdue, with a warning on stderr", async () => {
  const crlPath = join(dir, "old-crl.pem");
  const r = await revoke({
    ca: await loadCa(join(dir, "macula-ca")),
    serials: ["ab"],
    crlPath,
    now: new Date(Math.floor((Date.now() - 40 * DAY) / 1000) * 1000), // a CRL keeps whole seconds
    durationMs: 30 * DAY,
  });
  const p = await certs("print", "old-crl.pem");
  expect(p.code).toBe(0);
  expect(p.stderr).toBe(
    `warning: the CRL was due for renewal on ${r.nextUpdate.toISOString()}; run 'macula certs revoke' to refresh it\n`,
  );
  expect(p.stdout).toMatch(
    /^next update \S+ \(overdue by 1[01] days: renew it with 'macula certs revoke'\)$/m,
  );
  expect(p.stdout).toMatch(/^revoked {5}1\n {2}ab {2}\S+ {2}cessationOfOperation$/m);
});

test("a CRL with no entries says none", async () => {
  // No entries, no CRL number, no next update: not what revoke writes, but a CA may.
  const ca = await loadCa(join(dir, "macula-ca"));
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate: new Date(),
    signingKey: ca.privateKey,
    signingAlgorithm: { name: "Ed25519" },
    entries: [],
  });
  await writeFile(join(dir, "empty-crl.pem"), crl.toString("pem"));
  const p = await ok("print", "empty-crl.pem");
  expect(p.stdout).toMatch(/^revoked {5}none$/m);
  expect(p.stdout).toMatch(/^number {6}-$/m);
  expect(p.stdout).toMatch(/^next update -$/m);
  const j = JSON.parse((await ok("print", "--json", "empty-crl.pem")).stdout) as Crl;
  expect(j).toMatchObject({ number: null, nextUpdate: null, daysLeft: null, revoked: [] });
});

test("a public key from certs key: its type and the node id its certificate will name", async () => {
  const made = JSON.parse((await ok("key", "--name", "pk", "--key-type", "p256", "--json")).stdout);
  const p = JSON.parse((await ok("print", "--json", "pk.pub.pem")).stdout);
  expect(p).toEqual({
    kind: "public-key",
    keyType: "p256",
    nodeId: made.nodeId,
    sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
  });
  expect((await ok("print", "pk.pub.pem")).stdout).toBe(
    `kind       public key\nkey        p256\nnode id    ${made.nodeId}\nsha256     ${p.sha256}\n`,
  );
  const issued = JSON.parse(
    (await ok("issue", "--realm", "acme", "--name", "pk", "--in-pub", "pk.pub.pem", "--json"))
      .stdout,
  );
  expect(issued.nodeId).toBe(made.nodeId);
});

test("a certificate request: subject, key, node id, the names it asks for, its signature", async () => {
  expect((await openssl("genpkey", "-algorithm", "ed25519", "-out", "r.key")).code).toBe(0);
  const req = await openssl(
    "req",
    "-new",
    "-key",
    "r.key",
    "-subj",
    "/CN=edge-3",
    "-addext",
    "subjectAltName=DNS:edge-3.acme.internal,IP:10.0.0.3",
    "-out",
    "r.csr",
  );
  expect(req.code).toBe(0);
  const p = JSON.parse((await ok("print", "--json", "r.csr")).stdout);
  expect(p).toMatchObject({
    kind: "csr",
    subject: "CN=edge-3",
    keyType: "ed25519",
    dns: ["edge-3.acme.internal"],
    ips: ["10.0.0.3"],
    signatureValid: true,
  });
  const signed = JSON.parse((await ok("sign", "--csr", "r.csr", "--json")).stdout);
  expect(signed.nodeId).toBe(p.nodeId);
  expect((await ok("print", "r.csr")).stdout).toMatch(/^kind {7}certificate request\n/);
});

test("a CA bundle: every certificate, a JSON array; a certificate with its key: the key is not shown", async () => {
  const ca = await readFile(join(dir, "macula-ca", "ca.pem"), "utf8");
  const b = await readFile(join(dir, "b.crt"), "utf8");
  await writeFile(join(dir, "bundle.pem"), ca + b);
  const j = JSON.parse((await ok("print", "--json", "bundle.pem")).stdout);
  expect(j.map((c: { kind: string; isCa: boolean }) => [c.kind, c.isCa])).toEqual([
    ["certificate", true],
    ["certificate", false],
  ]);
  const text = (await ok("print", "bundle.pem")).stdout;
  expect(text).toMatch(/^kind {7}certificate \(CA\)\n[\s\S]*\n\nkind {7}certificate\n/);

  await writeFile(join(dir, "both.pem"), b + (await readFile(join(dir, "b.key"), "utf8")));
  const both = await certs("print", "both.pem");
  expect(both.code).toBe(0);
  expect(both.stderr).toBe("note: both.pem also holds a private key (not shown)\n");
  expect(both.stdout).toContain("subject    CN=b\n");
  expect(both.stdout).not.toContain("PRIVATE");
});

test("print --help says which kinds it shows", async () => {
  const h = await ok("print", "--help");
  for (const s of ["certificate", "CRL", "CSR", "public key", "Private keys are not shown"]) {
    expect(h.stdout).toContain(s);
  }
});
