/**
 * Every refusal of `macula certs` as people read it: one line on stderr, `macula certs <command>:
 * <what was wrong>` (a hint on an indented second line only where one is right), no parser
 * internals, the exit code of its kind (1 failed, 2 usage), and nothing written. Each case
 * compares the exact stderr. From source, in temp folders.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Result, run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const PASS = "a long enough passphrase";
let dir = "";
let home = ""; // not dir: Bun may leave a cache folder in $HOME

function certs(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return run([process.execPath, MAIN, "certs", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, ...env },
  });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const r = await certs(args, env);
  expect([args, r.code, r.stderr]).toEqual([args, 0, ""]);
  return r;
}

/** Every file under the folder with its bytes, to show a refusal changed nothing. */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await readdir(dir, { recursive: true })) {
    out[f] = await readFile(join(dir, f), "utf8").catch(() => "<dir>");
  }
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "macula-certs-errors-"));
  home = await mkdtemp(join(tmpdir(), "macula-certs-errors-home-"));
  await ok(["ca", "init", "--realm", "acme"]);
  await ok(["ca", "init", "--realm", "acme", "--out", "other-ca"]);
  await ok(["ca", "init", "--realm", "acme", "--out", "enc-ca", "--encrypt"], {
    MACULA_CA_PASSPHRASE: PASS,
  });
  await ok(["issue", "--realm", "acme", "--name", "n1"]);
  await ok(["key", "--name", "e"]);
  await ok(["revoke", "--serial", "12", "--ca-dir", "other-ca"]);
  const pem = await readFile(join(dir, "n1.crt"), "utf8");
  const body = pem.replace(/-----[^-]+-----|\s/g, "");
  await writeFile(join(dir, "n1.der"), Buffer.from(body, "base64"));
  const openssl = (...args: string[]) => run(["openssl", ...args], { cwd: dir });
  await openssl(
    "genpkey",
    "-algorithm",
    "rsa",
    "-pkeyopt",
    "rsa_keygen_bits:1024",
    "-out",
    "rsa.key",
  );
  expect((await openssl("pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub.pem")).code).toBe(0);
  await writeFile(
    join(dir, "bad.pub.pem"),
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
  );
  await writeFile(join(dir, "junk.txt"), "hello\n");
  await writeFile(join(dir, "empty.pem"), "");
  await writeFile(join(dir, "cut.pem"), pem.slice(0, 200));
  await writeFile(
    join(dir, "bad.pem"),
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
  );
  await writeFile(join(dir, "foo.pem"), "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n");
  // A CA directory whose files are swapped.
  await mkdir(join(dir, "swapped-ca"));
  await writeFile(
    join(dir, "swapped-ca", "ca.pem"),
    await readFile(join(dir, "macula-ca", "ca.key")),
  );
  await writeFile(
    join(dir, "swapped-ca", "ca.key"),
    await readFile(join(dir, "macula-ca", "ca.pem")),
  );
  await mkdir(join(dir, "half-ca"));
  await writeFile(join(dir, "half-ca", "ca.pem"), await readFile(join(dir, "macula-ca", "ca.pem")));
  await writeFile(join(dir, "half-ca", "ca.key"), await readFile(join(dir, "macula-ca", "ca.pem")));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

const PRINTABLE = "give a certificate, a CRL, a CSR or a public key";

describe("exact stderr, exit code, nothing written", () => {
  const cases: [string[], number, string][] = [
    // print: the kinds it cannot show, and files that are not what they seem
    [
      ["print", "macula-ca/ca.key"],
      1,
      `macula certs print: macula-ca/ca.key is a private key, not a certificate (${PRINTABLE})`,
    ],
    [
      ["print", "enc-ca/ca.key"],
      1,
      `macula certs print: enc-ca/ca.key is an encrypted private key, not a certificate (${PRINTABLE})`,
    ],
    [
      ["print", "e.key"],
      1,
      `macula certs print: e.key is a private key, not a certificate (${PRINTABLE})`,
    ],
    [
      ["print", "foo.pem"],
      1,
      `macula certs print: foo.pem is a PEM "FOO" block, not a certificate (${PRINTABLE})`,
    ],
    [
      ["print", "junk.txt"],
      1,
      "macula certs print: junk.txt is not a PEM file (no -----BEGIN line)",
    ],
    [
      ["print", "n1.der"],
      1,
      "macula certs print: n1.der is not a PEM file (no -----BEGIN line)\n" +
      "  macula certs reads PEM; if it is DER, convert it, e.g. openssl x509 -inform DER -in cert.der -out cert.pem",
    ],
    [["print", "empty.pem"], 1, "macula certs print: empty.pem is empty"],
    [
      ["print", "cut.pem"],
      1,
      'macula certs print: cut.pem is cut short: its "CERTIFICATE" block has no END line',
    ],
    [
      ["print", "bad.pem"],
      1,
      "macula certs print: bad.pem holds a certificate that cannot be read (the file is damaged)",
    ],
    [["print", "macula-ca"], 1, "macula certs print: cannot read file macula-ca: is a directory"],
    // verify: inputs of the wrong kind are exit 1 (inputs unreadable), not a verdict
    [
      ["verify", "--ca", "macula-ca/ca.key", "n1.crt"],
      1,
      "macula certs verify: --ca macula-ca/ca.key is a private key, not a certificate (give the realm CA's certificate, ca.pem in the CA directory)",
    ],
    [
      ["verify", "--ca", "macula-ca/ca.pem", "n1.key"],
      1,
      "macula certs verify: n1.key is a private key, not a certificate (give the node's or client's certificate, e.g. edge-1.crt)",
    ],
    [
      ["verify", "--ca", "macula-ca/ca.pem", "--crl", "n1.crt", "n1.crt"],
      1,
      "macula certs verify: --crl n1.crt is a certificate, not a CRL (give the CRL 'macula certs revoke' writes, crl.pem in the CA directory)",
    ],
    [
      ["verify", "--ca", "n1.crt", "n1.crt"],
      1,
      "macula certs verify: --ca n1.crt is not a Macula realm CA (no CA flag or no macula://<realm>/ca SAN)",
    ],
    [
      ["verify", "--ca", "macula-ca/ca.pem", "--crl", "other-ca/crl.pem", "n1.crt"],
      1,
      "macula certs verify: --crl other-ca/crl.pem is not signed by this CA",
    ],
    [
      ["verify", "--ca", "macula-ca/ca.pem", "bad.pem"],
      5,
      "macula certs verify: bad.pem: untrusted: the certificate cannot be parsed (damaged or tampered)",
    ],
    // issue
    [
      ["issue", "--realm", "acme", "--name", "x", "--in-pub", "n1.crt"],
      1,
      "macula certs issue: --in-pub n1.crt is a certificate, not a public key (give the <name>.pub.pem that 'macula certs key' writes; the private key stays on its host)",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--in-pub", "rsa.pub.pem"],
      1,
      "macula certs issue: --in-pub rsa.pub.pem is a public key of type rsa; certificates take Ed25519 or ECDSA P-256 keys (make one with 'macula certs key')",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--in-pub", "bad.pub.pem"],
      1,
      "macula certs issue: --in-pub bad.pub.pem holds a public key that cannot be read (damaged)",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--in-pub", "e.pub.pem", "--creds-dir", "x"],
      2,
      "macula certs issue: --creds-dir needs the key, and --in-pub leaves it elsewhere: give one of them",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--creds-dir", "n1.crt"],
      1,
      "macula certs issue: --creds-dir n1.crt is a file, not a directory",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--ca-dir", "swapped-ca"],
      1,
      "macula certs issue: swapped-ca/ca.pem is a private key, not a certificate (a CA directory holds the CA certificate as ca.pem)",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--ca-dir", "half-ca"],
      1,
      "macula certs issue: half-ca/ca.key is a certificate, not a private key (a CA directory holds the CA's private key as ca.key)",
    ],
    // sign
    [
      ["sign", "--csr", "n1.crt"],
      1,
      "macula certs sign: --csr n1.crt is a certificate, not a certificate request (give a PKCS#10 request, e.g. from openssl req -new)",
    ],
    // revoke
    [["revoke"], 2, "macula certs revoke: nothing to revoke: give --serial or --cert"],
    [
      ["revoke", "--cert", "n1.key"],
      1,
      "macula certs revoke: --cert n1.key is a private key, not a certificate (give the certificate to revoke, or its serial with --serial)",
    ],
    [
      ["revoke", "--serial", "12", "--crl", "n1.crt"],
      1,
      "macula certs revoke: --crl n1.crt is a certificate, not a CRL (the file revoke extends must be a CRL, or absent to start one)",
    ],
    [
      ["revoke", "--serial", "12", "--publish", "quic://127.0.0.1:9", "--creds", "nope"],
      1,
      "macula certs revoke: credentials: cannot read nope/ca.pem: no such file; a credentials directory holds ca.pem, cert.pem, key.pem",
    ],
    // ca init: an existing CA is refused before a passphrase is asked for
    [
      ["ca", "init", "--realm", "acme", "--encrypt"],
      1,
      "macula certs ca init: macula-ca/ca.pem already exists (a CA is already there; use --force to replace it)",
    ],
    // key
    [
      ["key", "--name", "e"],
      1,
      "macula certs key: e.key already exists (use --force to replace it)",
    ],
    [
      ["key", "--name", "k", "--out", "n1.crt"],
      1,
      "macula certs key: --out n1.crt is a file, not a directory",
    ],
    [
      ["ca", "init", "--realm", "acme", "--out", "n1.crt"],
      1,
      "macula certs ca init: --out n1.crt is a file, not a directory",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--out", "n1.crt"],
      1,
      "macula certs issue: --out n1.crt is a file, not a directory",
    ],
    [
      ["sign", "--csr", "x.csr", "--out", "macula-ca"],
      1,
      "macula certs sign: --out macula-ca is a directory, not a file (give the file to write, e.g. macula-ca/edge-2.crt)",
    ],
  ];

  test.each(cases)("%p exits %p", async (args, code, stderr) => {
    const before = await snapshot();
    const r = await certs(args);
    expect({ code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({
      code,
      stderr: `${stderr}\n`,
      stdout: "",
    });
    expect(await snapshot()).toEqual(before);
  });

  // Flag values checked as they are parsed: usage errors (2), the flag and its value named
  // once by the command line (cli/main.ts), then what is wrong with it.
  test.each([
    [
      ["ca", "init", "--realm", "Acme!"],
      `macula certs ca init: --realm: realm label "Acme!" is not 1-63 of a-z, 0-9 and '-' (not at either end)`,
    ],
    [
      ["ca", "init", "--realm", "acme", "--duration", "ten days"],
      "macula certs ca init: --duration 'ten days': use a number and a unit, e.g. 8760h, 30d, 90m or 1d12h (units: s, m, h, d, w, y)",
    ],
    [
      ["issue", "--realm", "acme", "--name", "../x"],
      "macula certs issue: --name '../x': use 1-64 of A-Z, a-z, 0-9, '.', '_', '@' and '-', starting with a letter or digit",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--groups", "A!"],
      "macula certs issue: --groups 'A!': use 1-64 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit",
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--groups", "ops,A!"],
      `macula certs issue: --groups 'ops,A!': group "A!": use 1-64 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit`,
    ],
    [
      ["issue", "--realm", "acme", "--name", "x", "--ip", "300.1.1.1"],
      "macula certs issue: --ip '300.1.1.1': not an IPv4 or IPv6 address",
    ],
    [
      ["sign", "--csr", "x.csr", "--ip", "::1,nope"],
      `macula certs sign: --ip '::1,nope': address "nope": not an IPv4 or IPv6 address`,
    ],
    [
      ["revoke", "--serial", "zz"],
      "macula certs revoke: --serial 'zz': not a serial number: give it in hex, as 'certs print' shows it (e.g. 4f1b17e58e0eb8c2)",
    ],
    [
      ["revoke", "--serial", "12", "--publish", "http://x:1", "--creds", "c"],
      "macula certs revoke: --publish 'http://x:1': scheme must be quic://",
    ],
    [
      ["key", "--name", "k", "--key-type", "rsa"],
      "macula certs key: --key-type 'rsa': give one of ed25519, p256",
    ],
  ])("%p is a usage error", async (args, line) => {
    const before = await snapshot();
    const r = await certs(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(line as string);
    expect(r.stdout).toBe("");
    expect(await snapshot()).toEqual(before);
  });
});
test(
  "revoke --publish to a node that does not answer: the CRL is written, and the line says so",
  async () => {
    await ok([
      "issue",
      "--realm",
      "acme",
      "--name",
      "ops",
      "--role",
      "client",
      "--creds-dir",
      "ops",
    ]);
    await ok(["issue", "--realm", "acme", "--name", "gone"]);
    const r = await certs([
      "revoke",
      "--cert",
      "gone.crt",
      "--publish",
      "quic://127.0.0.1:9",
      "--creds",
      "ops",
    ]);
    expect(r.code).toBe(1);
    const [first, hint, ...rest] = r.stderr.split("\n");
    expect(first).toStartWith(
      "macula certs revoke: wrote macula-ca/crl.pem, but cannot publish it: cannot connect to quic://127.0.0.1:9: ",
    );
    expect(hint).toBe(
      "  run the same revoke with --publish again when the node is reachable (it re-signs and hands the CRL over), or copy the CRL to the nodes' tls.crl",
    );
    expect(rest).toEqual([""]);
    const serial = JSON.parse((await ok(["print", "--json", "gone.crt"])).stdout).serial;
    const crl = JSON.parse((await ok(["print", "--json", "macula-ca/crl.pem"])).stdout);
    expect(crl.revoked.map((e: { serial: string }) => e.serial)).toEqual([serial]);
  },
  60_000,
);
