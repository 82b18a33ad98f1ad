/**
 * `macula certs` end to end, from source (`bun cli/main.ts certs …`) in temp folders, with
 * OpenSSL as the independent judge: its `verify` accepts what we issue and sign, its `req`
 * makes the requests we sign. Each verify failure class has its exit code; bad input leaves
 * nothing on disk.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { issueCert, loadCa } from "../../lib/identity/mod.ts";
import { nodeIdText } from "../../lib/identity/names.ts";
import { type Result, run } from "../helpers/run.ts";
import { craft } from "./craft.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const DAY = 86_400_000;
const PASS = "a long enough passphrase";

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "macula-certs-cli-"));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

let home: Promise<string> | undefined;

/** Runs `bun cli/main.ts certs ...args` in `cwd`, with no passphrase in the environment. */
async function certs(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Result> {
  home ??= tmp(); // not cwd: Bun may leave a cache folder in $HOME
  return run([process.execPath, MAIN, "certs", ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: await home, ...env },
  });
}

function openssl(cwd: string, ...args: string[]): Promise<Result> {
  return run(["openssl", ...args], { cwd });
}

describe("macula certs (from source)", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await tmp();
    const r = await certs(dir, ["ca", "init", "--realm", "acme", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.realm).toBe("acme");
    expect(out.keyType).toBe("ed25519");
  });

  test("ca init: files, mode 0600, and the CA profile as OpenSSL reads it", async () => {
    expect((await stat(join(dir, "macula-ca", "ca.key"))).mode & 0o777).toBe(0o600);
    const t = await openssl(dir, "x509", "-in", "macula-ca/ca.pem", "-noout", "-text");
    expect(t.code).toBe(0);
    expect(t.stdout).toContain("Subject: CN = Macula realm CA acme, O = Macula");
    expect(t.stdout).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(t.stdout).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(t.stdout).toContain("URI:macula://acme/ca");
    expect(t.stdout).toContain("Subject Key Identifier");
  });

  test("issue: openssl verify accepts it and x509 -text shows the SAN URI", async () => {
    const r = await certs(dir, [
      "issue",
      "--realm",
      "acme",
      "--name",
      "edge-1",
      "--groups",
      "sensors,ops",
      "--dns",
      "edge-1.acme.internal",
      "--ip",
      "10.0.0.7",
      "--json",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { nodeId: string; uri: string; keyPath: string };
    expect(out.uri).toBe(`macula://acme/node/${out.nodeId}`);
    expect((await stat(join(dir, "edge-1.key"))).mode & 0o777).toBe(0o600);
    const v = await openssl(dir, "verify", "-CAfile", "macula-ca/ca.pem", "edge-1.crt");
    expect(v.stdout).toBe("edge-1.crt: OK\n");
    const t = await openssl(dir, "x509", "-in", "edge-1.crt", "-noout", "-text");
    expect(t.stdout).toContain(`URI:macula://acme/node/${out.nodeId}`);
    expect(t.stdout).toContain("URI:macula://acme/group/sensors");
    expect(t.stdout).toContain("URI:macula://acme/group/ops");
    expect(t.stdout).toContain("DNS:edge-1.acme.internal");
    expect(t.stdout).toContain("IP Address:10.0.0.7");
    expect(t.stdout).toContain("TLS Web Server Authentication, TLS Web Client Authentication");
    expect(t.stdout).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(t.stdout).toContain("Authority Key Identifier");
    // the key file really is the certificate's key
    const a = await openssl(dir, "pkey", "-in", "edge-1.key", "-pubout");
    const b = await openssl(dir, "x509", "-in", "edge-1.crt", "-noout", "-pubkey");
    expect(a.stdout).toBe(b.stdout);
    const ok = await certs(dir, [
      "verify",
      "--ca",
      "macula-ca/ca.pem",
      "--realm",
      "acme",
      "edge-1.crt",
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`edge-1.crt: OK (valid: node ${out.nodeId} in realm acme`);
    const p = await certs(dir, ["print", "--json", "edge-1.crt"]);
    expect(JSON.parse(p.stdout)).toMatchObject({
      realm: "acme",
      nodeId: out.nodeId,
      keyNodeId: out.nodeId,
      groups: ["sensors", "ops"],
      dns: ["edge-1.acme.internal"],
      ips: ["10.0.0.7"],
    });
    const text = await certs(dir, ["print", "edge-1.crt"]);
    expect(text.stdout).toContain(`node id    ${out.nodeId}`);
  });

  test("issue --in-pub signs only the public key; no key file is written", async () => {
    await openssl(dir, "genpkey", "-algorithm", "ed25519", "-out", "laptop.key");
    await openssl(dir, "pkey", "-in", "laptop.key", "-pubout", "-out", "laptop.pub.pem");
    const r = await certs(dir, [
      "issue",
      "--realm",
      "acme",
      "--name",
      "laptop",
      "--in-pub",
      "laptop.pub.pem",
      "--out",
      "out",
    ]);
    expect(r.code).toBe(0);
    expect(await readdir(join(dir, "out"))).toEqual(["laptop.crt"]);
    const v = await openssl(dir, "verify", "-CAfile", "macula-ca/ca.pem", "out/laptop.crt");
    expect(v.stdout).toContain("OK");
    const a = await openssl(dir, "x509", "-in", "out/laptop.crt", "-noout", "-pubkey");
    expect(a.stdout).toBe(await readFile(join(dir, "laptop.pub.pem"), "utf8"));
    const priv = await certs(dir, [
      "issue",
      "--realm",
      "acme",
      "--name",
      "x",
      "--in-pub",
      "laptop.key",
    ]);
    expect(priv.code).toBe(1);
    expect(priv.stderr).toBe(
      "macula certs issue: --in-pub laptop.key is a private key, not a public key (give the <name>.pub.pem that 'macula certs key' writes; the private key stays on its host)\n",
    );
  });

  test.each([
    ["ed25519", ["-algorithm", "ed25519"]],
    ["p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]],
  ])("sign: an openssl req PKCS#10 with a %s key", async (kind, alg) => {
    await openssl(dir, "genpkey", ...alg, "-out", `${kind}.key`);
    const req = await openssl(
      dir,
      "req",
      "-new",
      "-key",
      `${kind}.key`,
      "-subj",
      `/CN=req-${kind}`,
      "-addext",
      `subjectAltName=DNS:${kind}.acme.internal`,
      "-out",
      `${kind}.csr`,
    );
    expect(req.code).toBe(0);
    const r = await certs(dir, [
      "sign",
      "--csr",
      `${kind}.csr`,
      "--groups",
      "ops",
      "--out",
      `${kind}.crt`,
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`signed CN=req-${kind} in realm acme`);
    const v = await openssl(dir, "verify", "-CAfile", "macula-ca/ca.pem", `${kind}.crt`);
    expect(v.stdout).toBe(`${kind}.crt: OK\n`);
    const p = JSON.parse((await certs(dir, ["print", "--json", `${kind}.crt`])).stdout);
    expect(p).toMatchObject({ subject: `CN=req-${kind}`, keyType: kind, groups: ["ops"] });
    expect(p.dns).toEqual([`${kind}.acme.internal`]);
    expect(p.nodeId).toBe(p.keyNodeId);
    const ok = await certs(dir, ["verify", "--ca", "macula-ca/ca.pem", `${kind}.crt`]);
    expect(ok.code).toBe(0);
    const wrong = await certs(dir, ["sign", "--csr", `${kind}.csr`, "--realm", "beta"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("is for realm acme, not beta");
  });

  describe("verify: one exit code per failure class", () => {
    async function verify(pem: string, extra: string[] = []) {
      const f = join(await tmp(), "cert.pem");
      await writeFile(f, pem);
      return certs(dir, ["verify", "--ca", "macula-ca/ca.pem", ...extra, f]);
    }
    const ca = () => loadCa(join(dir, "macula-ca"));

    test("3 expired", async () => {
      const c = await issueCert({
        ca: await ca(),
        name: "old",
        notBefore: new Date(Date.now() - 10 * DAY),
        durationMs: DAY,
      });
      const r = await verify(c.pem);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(": expired: the certificate expired on ");
    });

    test("4 not yet valid", async () => {
      const c = await issueCert({
        ca: await ca(),
        name: "later",
        notBefore: new Date(Date.now() + 10 * DAY),
        durationMs: DAY,
      });
      const r = await verify(c.pem);
      expect(r.code).toBe(4);
      expect(r.stderr).toContain(": not-yet-valid: not valid until ");
    });

    test("5 another CA, and a tampered certificate", async () => {
      const other = await tmp();
      expect((await certs(other, ["ca", "init", "--realm", "acme"])).code).toBe(0);
      expect((await certs(other, ["issue", "--realm", "acme", "--name", "n"])).code).toBe(0);
      const r = await verify(await readFile(join(other, "n.crt"), "utf8"));
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("untrusted: the signature does not verify against this CA");
      const o = await openssl(dir, "verify", "-CAfile", "macula-ca/ca.pem", join(other, "n.crt"));
      expect(o.code).not.toBe(0); // openssl agrees

      const pem = await readFile(join(dir, "edge-1.crt"), "utf8");
      const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
      der[der.length - 80]! ^= 0x20;
      const t = await verify(
        `-----BEGIN CERTIFICATE-----\n${der.toString("base64")}\n-----END CERTIFICATE-----\n`,
        ["--json"],
      );
      expect(t.code).toBe(5);
      expect(JSON.parse(t.stdout)).toMatchObject({ ok: false, class: "untrusted", code: 5 });
    });

    test("6 wrong realm", async () => {
      const r = await verify(await readFile(join(dir, "edge-1.crt"), "utf8"), ["--realm", "beta"]);
      expect(r.code).toBe(6);
      expect(r.stderr).toContain("wrong-realm: the certificate is for realm acme, not beta");
    });

    test("7 revoked (revoke adds to the CRL; openssl agrees)", async () => {
      expect((await certs(dir, ["issue", "--realm", "acme", "--name", "gone"])).code).toBe(0);
      expect((await certs(dir, ["issue", "--realm", "acme", "--name", "gone2"])).code).toBe(0);
      const r1 = await certs(dir, ["revoke", "--cert", "gone.crt", "--json"]);
      expect(r1.code).toBe(0);
      expect(JSON.parse(r1.stdout).number).toBe("1");
      const serial2 =
        JSON.parse((await certs(dir, ["print", "--json", "gone2.crt"])).stdout).serial;
      // --publish without --creds (or the other way round): a usage error, nothing revoked.
      const half = await certs(dir, [
        "revoke",
        "--serial",
        serial2,
        "--publish",
        "quic://127.0.0.1:9",
      ]);
      expect(half.code).toBe(2);
      expect(half.stderr).toContain("--publish and --creds go together");
      expect(half.stderr).not.toContain("    at ");
      const r2 = await certs(dir, ["revoke", "--serial", serial2]);
      expect(r2.code).toBe(0);
      expect(r2.stdout).toContain("CRL number 2, 2 revoked");
      for (const name of ["gone", "gone2"]) {
        const v = await certs(dir, [
          "verify",
          "--ca",
          "macula-ca/ca.pem",
          "--crl",
          "macula-ca/crl.pem",
          `${name}.crt`,
        ]);
        expect(v.code).toBe(7);
        expect(v.stderr).toContain("revoked: serial ");
        const o = await openssl(
          dir,
          "verify",
          "-crl_check",
          "-CRLfile",
          "macula-ca/crl.pem",
          "-CAfile",
          "macula-ca/ca.pem",
          `${name}.crt`,
        );
        expect(o.stdout + o.stderr).toContain("certificate revoked");
      }
      const still = await certs(dir, [
        "verify",
        "--ca",
        "macula-ca/ca.pem",
        "--crl",
        "macula-ca/crl.pem",
        "edge-1.crt",
      ]);
      expect(still.code).toBe(0);
    });

    test("8 node id mismatch and missing SAN", async () => {
      const id = nodeIdText(new Uint8Array(32).fill(7));
      const r = await verify(await craft(await ca(), { uris: [`macula://acme/node/${id}`] }));
      expect(r.code).toBe(8);
      expect(r.stderr).toContain("bad-profile: node id mismatch");
      const n = await verify(await craft(await ca()));
      expect(n.code).toBe(8);
      expect(n.stderr).toContain("missing SAN");
    });

    test("--help documents the exit codes", async () => {
      const r = await certs(dir, ["verify", "--help"]);
      expect(r.code).toBe(0);
      for (
        const s of [
          "3  expired",
          "4  not-yet-valid",
          "5  untrusted",
          "6  wrong-realm",
          "7  revoked",
          "8  bad-profile",
        ]
      ) {
        expect(r.stdout).toContain(s);
      }
    });
  });

  describe("bad input: one clear line, non-zero exit, nothing on disk", () => {
    test.each([
      [["ca", "init", "--realm", "Acme!"], 2, `--realm: realm label "Acme!" is not`],
      [["ca", "init", "--realm", "a..b"], 2, `--realm 'a..b': realm label "" is not`],
      [
        ["ca", "init", "--realm", "acme", "--duration", "ten days"],
        2,
        "--duration 'ten days': use a number and a unit",
      ],
      [
        ["ca", "init", "--realm", "acme", "--key-type", "rsa"],
        2,
        "--key-type 'rsa': give one of ed25519, p256",
      ],
      [["issue", "--realm", "acme", "--name", "n"], 1, "no CA in macula-ca"],
      [["issue", "--realm", "acme", "--name", "../evil"], 2, "--name '../evil': use 1-64 of"],
      [["sign", "--csr", "missing.csr"], 1, "cannot read request missing.csr: no such file"],
      [["print", "missing.pem"], 1, "cannot read file missing.pem: no such file"],
      [["verify", "--ca", "nope.pem", "x.pem"], 1, "cannot read certificate x.pem: no such file"],
      [["revoke"], 2, "nothing to revoke: give --serial or --cert"],
    ])("%p exits %p", async (args, code, message) => {
      const empty = await tmp();
      const r = await certs(empty, args as string[]);
      expect(r.code).toBe(code as number);
      expect(r.stderr).toContain(message as string);
      expect(r.stdout).toBe("");
      expect(await readdir(empty)).toEqual([]);
    });

    test("CA already exists: refused, old CA untouched", async () => {
      const before = await readFile(join(dir, "macula-ca", "ca.key"), "utf8");
      const r = await certs(dir, ["ca", "init", "--realm", "acme"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        "macula certs ca init: macula-ca/ca.pem already exists (a CA is already there; use --force to replace it)\n",
      );
      expect(await readFile(join(dir, "macula-ca", "ca.key"), "utf8")).toBe(before);
    });

    test("bad IP, unreadable public key, existing certificate: nothing written", async () => {
      const before = (await readdir(dir)).sort();
      const ip = await certs(dir, [
        "issue",
        "--realm",
        "acme",
        "--name",
        "n9",
        "--ip",
        "300.1.1.1",
        "--out",
        "new",
      ]);
      expect(ip.code).toBe(2);
      expect(ip.stderr).toContain("--ip '300.1.1.1': not an IPv4 or IPv6 address");
      await writeFile(join(dir, "locked.pem"), "x");
      await chmod(join(dir, "locked.pem"), 0o000);
      const locked = await certs(dir, [
        "issue",
        "--realm",
        "acme",
        "--name",
        "n9",
        "--in-pub",
        "locked.pem",
      ]);
      expect(locked.code).toBe(1);
      expect(locked.stderr).toMatch(
        /^macula certs issue: (cannot read public key locked.pem: permission denied|--in-pub locked.pem is not a PEM file \(no -----BEGIN line\))\n$/, // root reads it anyway
      );
      await rm(join(dir, "locked.pem"));
      const again = await certs(dir, ["issue", "--realm", "acme", "--name", "edge-1"]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain("edge-1.crt already exists (use --force to replace)");
      expect((await readdir(dir)).sort()).toEqual(before);
    });
  });

  test("an encrypted CA needs the passphrase; a wrong one fails clearly", async () => {
    const d = await tmp();
    const env = { MACULA_CA_PASSPHRASE: PASS };
    const init = await certs(d, ["ca", "init", "--realm", "acme", "--encrypt"], env);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("(mode 0600, encrypted)");
    const key = await readFile(join(d, "macula-ca", "ca.key"), "utf8");
    expect(key).toContain("BEGIN ENCRYPTED PRIVATE KEY");
    const none = await certs(d, ["issue", "--realm", "acme", "--name", "n"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("needs a passphrase: set MACULA_CA_PASSPHRASE");
    const wrong = await certs(d, ["issue", "--realm", "acme", "--name", "n"], {
      MACULA_CA_PASSPHRASE: "not the passphrase",
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("wrong passphrase for macula-ca/ca.key");
    expect(await readdir(d)).toEqual(["macula-ca"]);
    const right = await certs(d, ["issue", "--realm", "acme", "--name", "n"], env);
    expect(right.code).toBe(0);
    // openssl reads the encrypted key with the same passphrase
    const o = await openssl(
      d,
      "pkey",
      "-in",
      "macula-ca/ca.key",
      "-passin",
      `pass:${PASS}`,
      "-noout",
    );
    expect(o.code).toBe(0);
  });

  test("warnings within 30 days of expiry, on every command that touches the CA or cert", async () => {
    const d = await tmp();
    const init = await certs(d, ["ca", "init", "--realm", "acme", "--duration", "20d"]);
    expect(init.code).toBe(0);
    expect(init.stderr).toMatch(/^warning: the CA for realm acme expires in (19d 23h|20d)/);
    const issue = await certs(d, ["issue", "--realm", "acme", "--name", "n", "--json"]);
    expect(issue.code).toBe(0);
    expect(issue.stderr).toContain("warning: the CA for realm acme expires in");
    expect(issue.stderr).toContain("warning: certificate n expires in");
    expect(JSON.parse(issue.stdout).cappedAtCaExpiry).toBe(true);
    const text = await certs(d, ["issue", "--realm", "acme", "--name", "m"]);
    expect(text.stdout).toContain("(cut to the CA's expiry)");
    for (
      const args of [
        ["print", "n.crt"],
        ["print", "macula-ca/ca.pem"],
        ["verify", "--ca", "macula-ca/ca.pem", "n.crt"],
        ["revoke", "--cert", "m.crt"],
      ]
    ) {
      const r = await certs(d, args);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("warning: ");
      expect(r.stderr).toContain("expires in");
    }
    // a long-lived CA and certificate: no warnings
    const quiet = await certs(dir, ["print", "edge-1.crt"]);
    expect(quiet.stderr).toBe("");
  });

  test("p256 CA: issue and sign verify with openssl", async () => {
    const d = await tmp();
    expect((await certs(d, ["ca", "init", "--realm", "acme", "--key-type", "p256"])).code).toBe(0);
    expect((await certs(d, ["issue", "--realm", "acme", "--name", "n"])).code).toBe(0);
    const v = await openssl(d, "verify", "-CAfile", "macula-ca/ca.pem", "n.crt");
    expect(v.stdout).toBe("n.crt: OK\n");
  });

  test("certs --help has examples and names the passphrase variable", async () => {
    const r = await certs(dir, ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Examples:");
    expect(r.stdout).toContain("MACULA_CA_PASSPHRASE");
    expect(r.stdout).toContain("130 Ctrl-C at the passphrase prompt");
    for (const sub of ["ca", "key", "issue", "sign", "print", "verify", "revoke"]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${sub} `, "m"));
    }
  });
});
