/**
 * `macula certs key`, and the flow it exists for: a key pair made on its host, the public key
 * signed by the CA (`certs issue --in-pub`), the certificate and the key used together. The key
 * files (modes, PKCS#8 and SPKI as OpenSSL reads them, refusing to overwrite), then a node (an
 * Ed25519 key) and a client (a P-256 key) of the realm made that way, talking through the node.
 * Real processes on 127.0.0.1.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Proc, spawnMacula } from "../helpers/proc.ts";
import { run } from "../helpers/run.ts";

let dir = "";
let home = ""; // not dir: Bun may leave a cache folder in $HOME
const procs: Proc[] = [];

function macula(args: string[]): Proc {
  const p = spawnMacula(args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
  });
  procs.push(p);
  return p;
}

async function done(...args: string[]) {
  const p = macula(args);
  const code = await p.code();
  return { code, stdout: p.out, stderr: p.err };
}

async function ok(...args: string[]) {
  const r = await done(...args);
  expect([args, r.code, r.stderr]).toEqual([args, 0, ""]);
  return r;
}

const openssl = (...args: string[]) => run(["openssl", ...args], { cwd: dir });
const read = (f: string) => readFileSync(join(dir, f), "utf8");
const mode = (f: string) => statSync(join(dir, f)).mode & 0o777;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "macula-certs-key-"));
  home = mkdtempSync(join(tmpdir(), "macula-certs-key-home-"));
});
afterAll(async () => {
  for (const p of procs) p.p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.code().catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

test("key: <name>.key (PKCS#8, 0600) and <name>.pub.pem (SPKI, 0644), a pair as OpenSSL reads it", async () => {
  const r = await ok("certs", "key", "--name", "edge-2");
  expect(r.stdout).toMatch(
    /^made a key pair for edge-2 \(ed25519\)\n {2}node id {2}[a-z2-7]{52}\n {2}key {6}edge-2\.key \(mode 0600: keep it on this host\)\n {2}public {3}edge-2\.pub\.pem \(for the CA: certs issue --name edge-2 --in-pub \.\.\.\)\n$/,
  );
  expect(mode("edge-2.key")).toBe(0o600);
  expect(mode("edge-2.pub.pem")).toBe(0o644);
  expect(read("edge-2.key")).toStartWith("-----BEGIN PRIVATE KEY-----\n");
  expect(read("edge-2.pub.pem")).toStartWith("-----BEGIN PUBLIC KEY-----\n");
  const pub = await openssl("pkey", "-in", "edge-2.key", "-pubout");
  expect(pub.code).toBe(0);
  expect(pub.stdout).toBe(read("edge-2.pub.pem"));
  const text = await openssl("pkey", "-in", "edge-2.key", "-noout", "-text");
  expect(text.stdout).toContain("ED25519 Private-Key");

  const j = JSON.parse(
    (await ok("certs", "key", "--name", "lap", "--key-type", "p256", "--out", "keys/lap", "--json"))
      .stdout,
  );
  expect(j).toEqual({
    name: "lap",
    keyType: "p256",
    nodeId: expect.stringMatching(/^[a-z2-7]{52}$/),
    keyPath: "keys/lap/lap.key",
    publicKeyPath: "keys/lap/lap.pub.pem",
    publicKeyPem: read("keys/lap/lap.pub.pem").trimEnd(),
  });
  expect(mode("keys/lap/lap.key")).toBe(0o600);
  const ec = await openssl("pkey", "-in", "keys/lap/lap.key", "-noout", "-text");
  expect(ec.stdout).toContain("ASN1 OID: prime256v1");
});

test("key refuses to replace a key unless --force", async () => {
  const before = read("edge-2.key");
  const again = await done("certs", "key", "--name", "edge-2");
  expect(again.code).toBe(1);
  expect(again.stderr).toBe(
    "macula certs key: edge-2.key already exists (use --force to replace it)\n",
  );
  expect(read("edge-2.key")).toBe(before);
  // only the public key there: refused too, nothing written
  writeFileSync(join(dir, "half.pub.pem"), "x");
  const half = await done("certs", "key", "--name", "half");
  expect(half.stderr).toBe(
    "macula certs key: half.pub.pem already exists (use --force to replace it)\n",
  );
  expect(readdirSync(dir).filter((f) => f.startsWith("half"))).toEqual(["half.pub.pem"]);
  await ok("certs", "key", "--name", "half", "--force");
  expect(read("half.pub.pem")).toStartWith("-----BEGIN PUBLIC KEY-----");
  expect(mode("half.key")).toBe(0o600);
});

test("key → issue --in-pub → a node and a client of the realm that work", async () => {
  await ok("certs", "ca", "init", "--realm", "acme", "--out", "ca");
  // The node's key: made on the node; only the public key goes to the CA.
  const nodeKey = JSON.parse((await ok("certs", "key", "--name", "n1", "--json")).stdout);
  const n1 = JSON.parse(
    (await ok(
      "certs",
      "issue",
      "--realm",
      "acme",
      "--ca-dir",
      "ca",
      "--name",
      "n1",
      "--in-pub",
      "n1.pub.pem",
      "--json",
    )).stdout,
  );
  expect(n1).toMatchObject({ nodeId: nodeKey.nodeId, role: "node", keyPath: null });
  // The certificate holds exactly that public key, and verifies (certs verify, openssl).
  const certPub = await openssl("x509", "-in", "n1.crt", "-noout", "-pubkey");
  expect(certPub.stdout).toBe(read("n1.pub.pem"));
  const v = await ok("certs", "verify", "--ca", "ca/ca.pem", "--realm", "acme", "n1.crt");
  expect(v.stdout).toStartWith(`n1.crt: OK (valid: node ${nodeKey.nodeId} in realm acme`);
  expect((await openssl("verify", "-CAfile", "ca/ca.pem", "n1.crt")).stdout).toBe("n1.crt: OK\n");

  // A client with a P-256 key, the same way.
  const aliceKey = JSON.parse(
    (await ok("certs", "key", "--name", "alice", "--key-type", "p256", "--json")).stdout,
  );
  const alice = JSON.parse(
    (await ok(
      "certs",
      "issue",
      "--realm",
      "acme",
      "--ca-dir",
      "ca",
      "--name",
      "alice",
      "--role",
      "client",
      "--in-pub",
      "alice.pub.pem",
      "--json",
    )).stdout,
  );
  expect(alice).toMatchObject({ nodeId: aliceKey.nodeId, role: "client" });

  // The node runs on its certificate and key (tls in its configuration) ...
  writeFileSync(
    join(dir, "n1.yaml"),
    "realm: acme\ntls: { ca: ca/ca.pem, cert: n1.crt, key: n1.key }\n",
  );
  const node = macula([
    "node",
    "up",
    "-f",
    "n1.yaml",
    "--listen",
    "127.0.0.1:0",
    "--data-dir",
    "n1-data",
    "--ready-json",
  ]);
  await node.waitFor("out", "\n");
  const ready = JSON.parse(node.lines()[0]!) as { url: string; nodeId: string };
  expect(ready.nodeId).toBe(nodeKey.nodeId);
  // ... and the client on its credentials directory, put together as docs/certificates.md says.
  mkdirSync(join(dir, "alice-creds"));
  copyFileSync(join(dir, "ca", "ca.pem"), join(dir, "alice-creds", "ca.pem"));
  copyFileSync(join(dir, "alice.crt"), join(dir, "alice-creds", "cert.pem"));
  copyFileSync(join(dir, "alice.key"), join(dir, "alice-creds", "key.pem"));
  const target = ["--server", ready.url, "--creds", "alice-creds"];
  const sub = macula(["sub", "greet.>", "--count", "1", ...target]);
  await sub.waitFor("err", "subscribed to greet.>");
  expect((await done("pub", "greet.world", "hi", ...target)).code).toBe(0);
  expect(await sub.code()).toBe(0);
  expect(sub.out).toBe("[greet.world] hi\n");
  node.p.kill("SIGTERM");
  expect(await node.code()).toBe(0);
}, 90_000);

test("key --help says what it writes, the modes, and the flow", async () => {
  const h = (await ok("certs", "key", "--help")).stdout;
  for (
    const s of [
      "<out>/<name>.key",
      "mode 0600",
      "<out>/<name>.pub.pem",
      "mode 0644",
      "--in-pub",
      "--force",
      "Examples:",
    ]
  ) {
    expect(h).toContain(s);
  }
});
