/**
 * `macula certs` — the realm certificate authority: create a CA, make key pairs, issue and sign
 * node and user certificates, print certificates and CRLs, verify and revoke. A thin shell over
 * the realm CA of lib/identity and the tool's own parts in certs-tool/ (print, input kinds, key
 * pairs, verify's exit codes, duration flags); the operator's guide is docs/certificates.md.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { existsSync, statSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import process from "node:process";
import {
  type CertInfo,
  type CrlInfo,
  type CsrInfo,
  describeFile,
  describePublicKey,
  DurationError,
  type FileInfo,
  makeKeyPair,
  parseDuration,
  type PublicKeyInfo,
  readInput,
  VERIFY_EXIT_CODES,
  verifyCert,
} from "../../certs-tool/mod.ts";
import {
  type Ca,
  CA_CERT_FILE,
  CA_KEY_FILE,
  CertsError,
  checkGroup,
  checkName,
  CRL_FILE,
  IDENTITY_DEFAULTS,
  initCa,
  issueCert,
  type Issued,
  loadCa,
  loadCredsDir,
  normalizeSerial,
  readText,
  realmProblem,
  realmTagHex,
  revoke,
  REVOKE_REASONS,
  type Role,
  ROLES,
  signCsr,
  writeCredsDir,
  x509,
} from "../../lib/identity/mod.ts";
import { CliFailure, guarded, usage } from "./shared.ts";
import { connect } from "../../lib/client/mod.ts";
import { parseUrl, UrlError } from "../../lib/peer/mod.ts";

/** Environment variable holding the CA passphrase (otherwise it is asked on the terminal). */
export const PASSPHRASE_ENV = "MACULA_CA_PASSPHRASE";
/** Default CA directory. */
export const DEFAULT_CA_DIR = "macula-ca";
/** Exit code when Ctrl-C (or SIGINT) stops a command at the passphrase prompt: 128 + SIGINT. */
export const INTERRUPTED = 130;
/** Key algorithms `ca init` and `key` offer. */
const KEY_TYPES = ["ed25519", "p256"] as const;

const line = (s: string) => process.stdout.write(`${s}\n`);
const warn = (lines: readonly string[]) => {
  for (const l of lines) process.stderr.write(`${l}\n`);
};
const json = (v: unknown) => line(JSON.stringify(v, null, 2));

// ---- option parsers ------------------------------------------------------------------------
// The command line prints a bad value as `<command>: --flag '<value>': <message>`, so these
// messages say what is wrong without naming the value again (a list's bad element is named).

/** `message` without `prefix` (the value a lib check names, which the command line names too). */
function unnamed(e: unknown, prefix: string): string {
  const m = (e as Error).message;
  return m.startsWith(prefix) ? m.slice(prefix.length) : m;
}

function realmArg(v: string): string {
  const p = realmProblem(v);
  if (p) throw new InvalidArgumentError(p);
  return v;
}

function durationArg(v: string): number {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof DurationError ? e.problem : (e as Error).message);
  }
}

function nameArg(v: string): string {
  try {
    return checkName(v);
  } catch (e) {
    throw new InvalidArgumentError(unnamed(e, `invalid name ${JSON.stringify(v)}: `));
  }
}

/** Repeatable, comma-separated list option. */
function listArg(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];
}

/**
 * A list option whose every element passes `check`, which returns what is wrong with one (or
 * null). The element is named only when the value holds several.
 */
function checkedList(noun: string, check: (item: string) => string | null) {
  return (v: string, prev: string[] = []): string[] => {
    const items = listArg(v, []);
    for (const item of items) {
      const problem = check(item);
      if (problem === null) continue;
      throw new InvalidArgumentError(
        items.length === 1 && item === v.trim()
          ? problem
          : `${noun} ${JSON.stringify(item)}: ${problem}`,
      );
    }
    return [...prev, ...items];
  };
}

/** `--groups`: names that follow the group rules. */
const groupsArg = checkedList("group", (g) => {
  try {
    checkGroup(g);
    return null;
  } catch (e) {
    return unnamed(e, `invalid group ${JSON.stringify(g)}: `);
  }
});

/** `--ip`: IPv4 or IPv6 addresses. */
const ipsArg = checkedList(
  "address",
  (ip) => isIP(ip) === 0 ? "not an IPv4 or IPv6 address" : null,
);

function repeatArg(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** `--serial`: a serial number in hex (`4f1b…`, `0x4f1b…` or `4f:1b:…`), repeatable. */
function serialArg(v: string, prev: string[] = []): string[] {
  try {
    normalizeSerial(v);
  } catch {
    throw new InvalidArgumentError(
      "not a serial number: give it in hex, as 'certs print' shows it (e.g. 4f1b17e58e0eb8c2)",
    );
  }
  return [...prev, v];
}

/** `--publish`: a node's quic://host:port. */
function publishArg(v: string): string {
  try {
    return parseUrl(v, "--publish").url;
  } catch (e) {
    if (e instanceof UrlError) {
      throw new InvalidArgumentError(unnamed(e, `--publish ${JSON.stringify(v)}: `));
    }
    throw e;
  }
}

// ---- shared helpers ------------------------------------------------------------------------

/** Ctrl-C or SIGINT at a prompt: exit 130, nothing written (prompts come before any write). */
const interrupted = () =>
  new CliFailure("interrupted at the passphrase prompt; nothing was written", INTERRUPTED);

/**
 * Reads a line from the terminal without echoing it. The terminal is put in raw mode before
 * the question is shown, so Ctrl-C arrives as a byte (and a SIGINT from elsewhere is caught
 * too): either rejects with exit code 130, the terminal restored. Ctrl-D gives up (exit 1).
 */
function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let buf = "";
    const done = () => {
      stdin.off("data", onData);
      process.off("SIGINT", onSigint);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    const onSigint = () => {
      done();
      reject(interrupted());
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          done();
          resolve(buf);
          return;
        }
        if (ch === "\u0003") {
          onSigint();
          return;
        }
        if (ch === "\u0004") {
          done();
          reject(new CertsError("no passphrase given (Ctrl-D at the prompt); nothing was written"));
          return;
        }
        if (ch === "\u007f" || ch === "\b") buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    // Both before the question shows: whoever sees it may press Ctrl-C at once.
    process.on("SIGINT", onSigint);
    stdin.setRawMode(true);
    stdin.on("data", onData);
    stdin.resume();
    process.stderr.write(question);
  });
}

/** The CA passphrase: from MACULA_CA_PASSPHRASE, else asked on the terminal (twice to set it). */
async function passphrase(confirm: boolean): Promise<string> {
  const env = process.env[PASSPHRASE_ENV];
  if (env) return env;
  if (!process.stdin.isTTY) {
    throw new CertsError(
      `the CA key needs a passphrase: set ${PASSPHRASE_ENV} or run on a terminal to be asked`,
    );
  }
  const first = await askHidden(confirm ? "new CA passphrase: " : "CA passphrase: ");
  if (first === "") throw new CertsError("no passphrase given; nothing was written");
  if (confirm && (await askHidden("again: ")) !== first) {
    throw new CertsError("the passphrases do not match; nothing was written");
  }
  return first;
}

/**
 * Loads the CA in `dir`. Its files are checked first (present, the right kinds, readable), so
 * a wrong directory fails before a passphrase is asked; then the passphrase, if its key needs one.
 */
async function openCa(dir: string): Promise<Ca> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  if (existsSync(certPath)) {
    const pem = await readInput(certPath, {
      want: "certificate",
      role: "CA certificate",
      hint: `a CA directory holds the CA certificate as ${CA_CERT_FILE}`,
    });
    try {
      new x509.X509Certificate(pem);
    } catch {
      throw new CertsError(`${certPath} is not a readable X.509 certificate (damaged)`);
    }
  }
  let encrypted = false;
  if (existsSync(keyPath)) {
    const text = await readInput(keyPath, {
      want: ["private-key", "encrypted-private-key"],
      role: "CA key",
      hint: `a CA directory holds the CA's private key as ${CA_KEY_FILE}`,
    });
    encrypted = text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----");
  }
  return loadCa(dir, encrypted ? await passphrase(false) : undefined);
}

/** Throws unless `dir` (a flag's directory) is absent or a directory. */
function dirArgCheck(flag: string, dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new CertsError(`${flag} ${dir} is a file, not a directory`);
  }
}

function issuedJson(i: Issued) {
  return {
    name: i.cert.subjectName.getField("CN")[0] ?? null,
    realm: i.realm,
    role: i.role,
    nodeId: i.nodeId,
    uri: i.uri,
    serial: i.serial,
    notBefore: i.notBefore.toISOString(),
    notAfter: i.notAfter.toISOString(),
    cappedAtCaExpiry: i.capped,
    certPath: i.certPath ?? null,
    keyPath: i.keyPath ?? null,
    pem: i.pem,
    warnings: i.warnings,
  };
}

function issuedText(i: Issued, what: string): void {
  line(`${what} ${i.cert.subject} in realm ${i.realm}`);
  line(`  role     ${i.role}`);
  line(`  node id  ${i.nodeId}`);
  line(`  uri      ${i.uri}`);
  line(`  serial   ${i.serial}`);
  line(
    `  valid    ${i.notBefore.toISOString()} to ${i.notAfter.toISOString()}${
      i.capped ? " (cut to the CA's expiry)" : ""
    }`,
  );
  if (i.certPath) line(`  cert     ${i.certPath}`);
  if (i.keyPath) line(`  key      ${i.keyPath} (mode 0600)`);
}

// ---- subcommands ---------------------------------------------------------------------------

function caInitCommand() {
  return new Command("init")
    .description("create a self-signed realm CA (ca.pem, and ca.key with mode 0600)")
    .requiredOption(
      "--realm <realm>",
      "realm the CA signs for (e.g. acme, com.acme.prod)",
      realmArg,
    )
    .option("--out <dir>", "directory for ca.pem and ca.key", DEFAULT_CA_DIR)
    .option("--duration <d>", "how long the CA is valid (e.g. 8760h, 365d, 5y)", durationArg)
    .addOption(
      new Option("--key-type <type>", "CA key algorithm").choices(KEY_TYPES)
        .default("ed25519" as const),
    )
    .option("--encrypt", `encrypt ca.key with a passphrase (from ${PASSPHRASE_ENV} or asked)`)
    .option("--force", "replace a CA already in --out")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Writes <out>/ca.pem, the CA certificate (mode 0644: every node gets a copy), and <out>/ca.key,
its private key (PKCS#8 PEM, mode 0600; with --encrypt, PBES2 AES-256-CBC under a passphrase of
at least 8 characters). Refuses to replace an existing CA unless --force; on any error, or
Ctrl-C at the passphrase prompt (exit 130), nothing is written.

The CA certificate is CN=Macula realm CA <realm>, O=Macula, with basicConstraints CA
(pathLen 0), keyUsage keyCertSign and cRLSign, and the SAN URI macula://<realm>/ca.
Default duration 8760h (one year). Keep the CA directory offline; see 'macula docs certificates'.

Examples:
  $ macula certs ca init --realm acme
  $ macula certs ca init --realm acme --encrypt           asks for the passphrase twice
  $ MACULA_CA_PASSPHRASE=... macula certs ca init --realm com.acme.prod --out /secure/ca --encrypt`,
    )
    .action(guarded("macula certs ca init", async (opts) => {
      dirArgCheck("--out", opts.out);
      if (opts.encrypt && !opts.force) {
        // What initCa refuses too, said before a passphrase is asked for nothing.
        for (const f of [CA_CERT_FILE, CA_KEY_FILE]) {
          const p = join(opts.out, f);
          if (existsSync(p)) {
            throw new CertsError(
              `${p} already exists (a CA is already there; use --force to replace it)`,
            );
          }
        }
      }
      const pass = opts.encrypt ? await passphrase(true) : undefined;
      const r = await initCa({
        realm: opts.realm,
        outDir: opts.out,
        durationMs: opts.duration ?? IDENTITY_DEFAULTS.realm.caLifetimeMs,
        keyType: opts.keyType,
        ...(pass !== undefined ? { passphrase: pass } : {}),
        force: opts.force ?? false,
      });
      warn(r.warnings);
      if (opts.json) {
        return json({
          realm: r.ca.realm,
          realmTag: realmTagHex(r.ca.realm),
          keyType: r.ca.type,
          notAfter: r.ca.cert.notAfter.toISOString(),
          certPath: r.certPath,
          keyPath: r.keyPath,
          encrypted: r.encrypted,
          warnings: r.warnings,
        });
      }
      line(
        `created the realm CA for ${r.ca.realm} (${r.ca.type}, realm tag ${
          realmTagHex(r.ca.realm)
        })`,
      );
      line(`  valid    until ${r.ca.cert.notAfter.toISOString()}`);
      line(`  cert     ${r.certPath}`);
      line(`  key      ${r.keyPath} (mode 0600${r.encrypted ? ", encrypted" : ""})`);
    }));
}

function keyCommand() {
  return new Command("key")
    .description(
      "make a key pair for 'issue --in-pub': <name>.key (0600) and <name>.pub.pem",
    )
    .requiredOption("--name <name>", "file name; give the same --name to 'certs issue'", nameArg)
    .addOption(
      new Option("--key-type <type>", "key algorithm").choices(KEY_TYPES)
        .default("ed25519" as const),
    )
    .option("--out <dir>", "directory for <name>.key and <name>.pub.pem (made if missing)", ".")
    .option("--force", "replace existing files (the old key is lost)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Writes <out>/<name>.key, the private key (PKCS#8 PEM, not encrypted, mode 0600: the node or
client reads it unattended; it never leaves this host), and <out>/<name>.pub.pem, the public
key (PEM, mode 0644) to carry to the CA. There 'certs issue --in-pub <name>.pub.pem' makes
<name>.crt; bring that back and use it with the key. The node id printed is the hash of the
public key: the certificate will name it. Refuses to replace either file unless --force.

Examples:
  $ macula certs key --name edge-2                           on the node
  $ macula certs issue --realm acme --name edge-2 --in-pub edge-2.pub.pem   on the CA machine
  $ macula certs key --name laptop --key-type p256 --out ~/.macula --json`,
    )
    .action(guarded("macula certs key", async (opts) => {
      dirArgCheck("--out", opts.out);
      const r = await makeKeyPair({
        name: opts.name,
        outDir: opts.out,
        keyType: opts.keyType,
        force: opts.force ?? false,
      });
      if (opts.json) return json(r);
      line(`made a key pair for ${r.name} (${r.keyType})`);
      line(`  node id  ${r.nodeId}`);
      line(`  key      ${r.keyPath} (mode 0600: keep it on this host)`);
      line(`  public   ${r.publicKeyPath} (for the CA: certs issue --name ${r.name} --in-pub ...)`);
    }));
}

/** Reads `--in-pub`: a PEM public key of a type certificates take (Ed25519, P-256). */
async function inPub(path: string): Promise<string> {
  const pem = await readInput(path, {
    want: "public-key",
    role: "public key",
    flag: "--in-pub",
    hint:
      "give the <name>.pub.pem that 'macula certs key' writes; the private key stays on its host",
  });
  let key: x509.PublicKey;
  try {
    key = new x509.PublicKey(pem);
  } catch {
    throw new CertsError(`--in-pub ${path} holds a public key that cannot be read (damaged)`);
  }
  const { keyType } = describePublicKey(key);
  if (!(KEY_TYPES as readonly string[]).includes(keyType)) {
    throw new CertsError(
      `--in-pub ${path} is a public key of type ${keyType}; certificates take Ed25519 or ECDSA P-256 keys (make one with 'macula certs key')`,
    );
  }
  return pem;
}

function issueCommand() {
  return new Command("issue")
    .description("issue a node or client certificate (new Ed25519 key, or sign --in-pub)")
    .requiredOption("--realm <realm>", "realm of the certificate (must be the CA's)", realmArg)
    .requiredOption("--name <name>", "certificate name (CN and file name)", nameArg)
    .addOption(
      new Option("--role <role>", "node (runs `macula node up`) or client (apps, people)")
        .choices(ROLES).default("node" as Role),
    )
    .option(
      "--creds-dir <dir>",
      "write what --creds reads instead: <dir>/ca.pem, cert.pem, key.pem (not with --in-pub)",
    )
    .option("--groups <a,b>", "groups, comma-separated or repeated", groupsArg)
    .option("--dns <names>", "DNS names, comma-separated or repeated", listArg)
    .option("--ip <addrs>", "IP addresses, comma-separated or repeated", ipsArg)
    .option(
      "--duration <d>",
      "validity (default 2160h = 90 days; cut to the CA's expiry)",
      durationArg,
    )
    .option(
      "--in-pub <file>",
      "sign this PEM public key (from 'certs key') instead of making a key pair",
    )
    .option("--ca-dir <dir>", "the CA directory", DEFAULT_CA_DIR)
    .option("--out <dir>", "directory for <name>.crt and <name>.key", ".")
    .option("--force", "replace existing files")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Writes <out>/<name>.crt (mode 0644) and, unless --in-pub is given, <out>/<name>.key (PKCS#8
PEM, mode 0600); with --creds-dir, a credentials directory instead (ca.pem, cert.pem, key.pem
with mode 0600), what --creds reads. With --in-pub only <name>.crt is written: the key was made
on its host by 'macula certs key' and stays there. Existing files are refused unless --force.

The role says what the certificate may do ('macula docs security'). --role node (the default: what
every certificate was before roles) carries macula://<realm>/node/<node-id> with EKU serverAuth
and clientAuth: a mesh node, which may open routes, take part in membership and relay. --role
client carries macula://<realm>/client/<node-id> with EKU clientAuth only: an application, a
person or a script, held to the node's permissions by its groups. Give people and programs
client certificates; keep node certificates for the machines of the mesh. The node id is the
SHA-256 of the key's SubjectPublicKeyInfo (base32); one macula://<realm>/group/<group> URI per
group; the DNS and IP names.

Examples:
  $ macula certs issue --realm acme --name edge-1 --ip 10.0.0.7
  $ macula certs issue --realm acme --name alice --role client --groups operator --creds-dir alice/
  $ macula certs issue --realm acme --name laptop --in-pub laptop.pub.pem --out certs/`,
    )
    .action(guarded("macula certs issue", async (opts) => {
      if (opts.credsDir !== undefined && opts.inPub !== undefined) {
        throw usage(
          "--creds-dir needs the key, and --in-pub leaves it elsewhere: give one of them",
        );
      }
      if (opts.credsDir !== undefined) dirArgCheck("--creds-dir", opts.credsDir);
      else dirArgCheck("--out", opts.out);
      const pub = opts.inPub === undefined ? undefined : await inPub(opts.inPub);
      const ca = await openCa(opts.caDir);
      if (ca.realm !== opts.realm) {
        throw new CertsError(`the CA in ${opts.caDir} is for realm ${ca.realm}, not ${opts.realm}`);
      }
      const r = await issueCert({
        ca,
        name: opts.name,
        role: opts.role,
        groups: opts.groups ?? [],
        dns: opts.dns ?? [],
        ips: opts.ip ?? [],
        durationMs: opts.duration ?? IDENTITY_DEFAULTS.realm.certLifetimeMs,
        ...(pub !== undefined ? { publicKeyPem: pub } : {}),
        ...(opts.credsDir === undefined ? { outDir: opts.out } : {}),
        force: opts.force ?? false,
      });
      if (opts.credsDir !== undefined) {
        const paths = await writeCredsDir(
          opts.credsDir,
          { ca: ca.pem, cert: r.pem, key: r.keyPem! },
          { force: opts.force ?? false },
        );
        r.certPath = paths.cert;
        r.keyPath = paths.key;
      }
      warn(r.warnings);
      if (opts.json) return json(issuedJson(r));
      issuedText(r, "issued");
      if (opts.credsDir !== undefined) line(`  creds    ${opts.credsDir} (use it with --creds)`);
    }));
}

function signCommand() {
  return new Command("sign")
    .description("sign a PKCS#10 certificate request (e.g. from openssl req)")
    .requiredOption("--csr <file>", "the request, PEM")
    .option("--realm <realm>", "expected realm (default: the CA's)", realmArg)
    .option("--name <name>", "certificate name (default: the request's CN)", nameArg)
    .addOption(
      new Option("--role <role>", "node or client (see certs issue --help)").choices(ROLES)
        .default("node" as Role),
    )
    .option("--groups <a,b>", "groups, comma-separated or repeated", groupsArg)
    .option("--dns <names>", "extra DNS names", listArg)
    .option("--ip <addrs>", "extra IP addresses", ipsArg)
    .option(
      "--duration <d>",
      "validity (default 2160h = 90 days; cut to the CA's expiry)",
      durationArg,
    )
    .option("--ca-dir <dir>", "the CA directory", DEFAULT_CA_DIR)
    .option("--out <file>", "write the certificate here (default: print it)")
    .option("--force", "replace --out if it exists")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Only the request's key, its CN and the DNS/IP names it asks for are used; the macula://
URIs, key usage and validity always come from the CA. Prints the certificate (PEM), or with
--out writes it there (mode 0644; refused if it exists, unless --force).

Example:
  $ openssl genpkey -algorithm ed25519 -out node.key
  $ openssl req -new -key node.key -subj /CN=edge-2 -out node.csr
  $ macula certs sign --csr node.csr --out edge-2.crt`,
    )
    .action(guarded("macula certs sign", async (opts) => {
      if (opts.out !== undefined && existsSync(opts.out) && statSync(opts.out).isDirectory()) {
        throw new CertsError(
          `--out ${opts.out} is a directory, not a file (give the file to write, e.g. ${
            join(opts.out, "edge-2.crt")
          })`,
        );
      }
      const csrPem = await readInput(opts.csr, {
        want: "csr",
        role: "request",
        flag: "--csr",
        hint: "give a PKCS#10 request, e.g. from openssl req -new",
      });
      const ca = await openCa(opts.caDir);
      if (opts.realm !== undefined && ca.realm !== opts.realm) {
        throw new CertsError(`the CA in ${opts.caDir} is for realm ${ca.realm}, not ${opts.realm}`);
      }
      const r = await signCsr({
        role: opts.role,
        ca,
        csrPem,
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        groups: opts.groups ?? [],
        dns: opts.dns ?? [],
        ips: opts.ip ?? [],
        durationMs: opts.duration ?? IDENTITY_DEFAULTS.realm.certLifetimeMs,
        ...(opts.out !== undefined ? { outFile: opts.out } : {}),
        force: opts.force ?? false,
      });
      warn(r.warnings);
      if (opts.json) return json(issuedJson(r));
      if (opts.out === undefined) return line(r.pem);
      issuedText(r, "signed");
    }));
}

/** Rows of `certs print`: names padded to the longest (at least 10). */
function rows(list: [string, string][]): string[] {
  const w = Math.max(10, ...list.map(([k]) => k.length));
  return list.map(([k, v]) => `${k.padEnd(w)} ${v}`);
}

function certRows(info: CertInfo): string[] {
  return rows([
    ["kind", info.isCa ? "certificate (CA)" : "certificate"],
    ["subject", info.subject],
    ["issuer", info.issuer],
    ["serial", info.serial],
    ["valid", `${info.notBefore} to ${info.notAfter} (${info.daysLeft} days left)`],
    ["ca", info.isCa ? `yes (pathLen ${info.pathLength ?? "none"})` : "no"],
    ["key", info.keyType],
    ["realm", info.realm ? `${info.realm} (tag ${info.realmTag})` : "-"],
    ["role", info.role ?? "-"],
    ["node id", info.nodeId ?? "-"],
    ["groups", info.groups.join(", ") || "-"],
    ["uris", info.uris.join(", ") || "-"],
    ["dns", info.dns.join(", ") || "-"],
    ["ips", info.ips.join(", ") || "-"],
    ["key usage", [...info.keyUsage, ...info.extendedKeyUsage].join(", ") || "-"],
    ["sha256", info.sha256],
  ]);
}

function crlRows(info: CrlInfo): string[] {
  const due = info.daysLeft === null
    ? ""
    : info.daysLeft >= 0
    ? ` (${info.daysLeft} days left)`
    : ` (overdue by ${-info.daysLeft} days: renew it with 'macula certs revoke')`;
  const out = rows([
    ["kind", "CRL"],
    ["issuer", info.issuer],
    ["key id", info.authorityKeyId ?? "-"],
    ["number", info.number ?? "-"],
    ["this update", info.thisUpdate],
    ["next update", info.nextUpdate === null ? "-" : `${info.nextUpdate}${due}`],
    ["revoked", info.revoked.length === 0 ? "none" : String(info.revoked.length)],
    ["sha256", info.sha256],
  ]);
  const sha = out.pop()!;
  const w = Math.max(...info.revoked.map((r) => r.serial.length));
  for (const r of info.revoked) {
    out.push(`  ${r.serial.padEnd(w)}  ${r.date}  ${r.reason ?? "-"}`);
  }
  return [...out, sha];
}

function csrRows(info: CsrInfo): string[] {
  return rows([
    ["kind", "certificate request"],
    ["subject", info.subject],
    ["key", info.keyType],
    ["node id", info.nodeId],
    ["dns", info.dns.join(", ") || "-"],
    ["ips", info.ips.join(", ") || "-"],
    ["signature", info.signatureValid ? "valid" : "does not verify ('certs sign' refuses it)"],
    ["sha256", info.sha256],
  ]);
}

function publicKeyRows(info: PublicKeyInfo): string[] {
  return rows([
    ["kind", "public key"],
    ["key", info.keyType],
    ["node id", info.nodeId],
    ["sha256", info.sha256],
  ]);
}

function infoRows(info: FileInfo): string[] {
  switch (info.kind) {
    case "certificate":
      return certRows(info);
    case "crl":
      return crlRows(info);
    case "csr":
      return csrRows(info);
    case "public-key":
      return publicKeyRows(info);
  }
}

function printCommand() {
  return new Command("print")
    .description("show what a certificate, CRL, request or public key says")
    .argument("<file>", "PEM file: certificate (or CA bundle), CRL, CSR or public key")
    .option("--json", "print as JSON (an array when the file holds several)")
    .addHelpText(
      "after",
      `
Reads the file's PEM blocks and shows each one it can:
  certificate  names, realm and tag, role, node id, groups, validity, key usage
  CRL          issuer, CRL number, this and next update, each revoked serial with its
               date and reason (what 'certs revoke' writes; the signature is not checked
               here: 'certs verify --crl' does that)
  CSR          subject, key, node id, the names asked for, whether its signature verifies
  public key   key type and the node id a certificate for it will name
Private keys are not shown. Within 30 days of a certificate's expiry, or past a CRL's next
update, a warning goes to stderr; stdout stays as above.

Examples:
  $ macula certs print edge-1.crt
  $ macula certs print --json macula-ca/crl.pem
  $ macula certs print edge-2.pub.pem`,
    )
    .action(guarded("macula certs print", async (file, opts) => {
      const { items, warnings } = await describeFile(await readText(file, "file"), file);
      warn(warnings);
      if (opts.json) return json(items.length === 1 ? items[0] : items);
      line(items.map((i) => infoRows(i).join("\n")).join("\n\n"));
    }));
}

function verifyCommand() {
  const meaning: Record<keyof typeof VERIFY_EXIT_CODES, string> = {
    ok: "valid",
    expired: "the certificate (or the CA) is past its notAfter",
    "not-yet-valid": "before its notBefore",
    untrusted: "not signed by this CA (another CA, altered bytes, unparsable)",
    "wrong-realm": "its realm is not the CA's (or not --realm)",
    revoked: "its serial is in the CRL",
    "bad-profile": "a CA cert, wrong key usage/EKU, no node URI, node id not the key's hash",
  };
  const codes = Object.entries(VERIFY_EXIT_CODES).map(([k, v]) =>
    `  ${v}  ${k.padEnd(13)} ${meaning[k as keyof typeof meaning]}`
  ).join("\n");
  return new Command("verify")
    .description("check a certificate against a realm CA (and CRL); exit code per failure class")
    .argument("<cert>", "certificate to check, PEM")
    .requiredOption("--ca <file>", "the realm CA certificate, PEM")
    .option("--crl <file>", "a CRL signed by the CA")
    .option("--realm <realm>", "the realm the certificate must belong to", realmArg)
    .option("--json", "print the verdict as JSON (also on failure)")
    .addHelpText(
      "after",
      `
Checks: the signature is the CA's; the CA and the certificate are within their validity;
it is not a CA, has keyUsage digitalSignature and EKU serverAuth+clientAuth; exactly one
macula://<realm>/node/<id> URI whose id is the hash of the certificate's key; the realm is the
CA's (and --realm's); the serial is not in the CRL.

Exit codes:
${codes}
  1  inputs unreadable: missing file, a file of the wrong kind (a key given as --ca),
     CA not a Macula CA, CRL not signed by the CA
  2  usage error

Example:
  $ macula certs verify --ca macula-ca/ca.pem --crl macula-ca/crl.pem --realm acme edge-1.crt`,
    )
    .action(guarded("macula certs verify", async (file, opts) => {
      const certPem = await readInput(file, {
        want: "certificate",
        role: "certificate",
        hint: "give the node's or client's certificate, e.g. edge-1.crt",
      });
      const caPem = await readInput(opts.ca, {
        want: "certificate",
        role: "CA certificate",
        flag: "--ca",
        hint: `give the realm CA's certificate, ${CA_CERT_FILE} in the CA directory`,
      });
      const crlPem = opts.crl === undefined ? undefined : await readInput(opts.crl, {
        want: "crl",
        role: "CRL",
        flag: "--crl",
        hint: `give the CRL 'macula certs revoke' writes, ${CRL_FILE} in the CA directory`,
      });
      const r = await verifyCert({
        caPem,
        certPem,
        ...(crlPem !== undefined ? { crlPem } : {}),
        ...(opts.realm !== undefined ? { realm: opts.realm } : {}),
        names: { ca: `--ca ${opts.ca}`, ...(opts.crl ? { crl: `--crl ${opts.crl}` } : {}) },
      });
      warn(r.warnings);
      if (opts.json) json(r);
      if (r.ok) {
        if (!opts.json) line(`${file}: OK (${r.message})`);
        return;
      }
      process.stderr.write(`macula certs verify: ${file}: ${r.class}: ${r.message}\n`);
      throw new CommanderError(r.code, `macula.certs.${r.class}`, r.message);
    }));
}

function revokeCommand() {
  return new Command("revoke")
    .description("revoke certificates: add them to the CA's signed CRL")
    .option("--serial <hex>", "serial number to revoke, in hex (repeatable)", serialArg)
    .option("--cert <file>", "certificate to revoke (repeatable)", repeatArg)
    .option("--ca-dir <dir>", "the CA directory", DEFAULT_CA_DIR)
    .option("--crl <file>", `the CRL to extend and rewrite (default <ca-dir>/${CRL_FILE})`)
    .addOption(
      new Option("--reason <reason>", "revocation reason recorded").choices(REVOKE_REASONS)
        .default("cessationOfOperation" as const),
    )
    .option("--crl-duration <d>", "CRL lifetime, its nextUpdate (default 30d)", durationArg)
    .option(
      "--publish <url>",
      "then hand the new CRL to this node (quic://host:port): it spreads",
      publishArg,
    )
    .option("--creds <dir>", "credentials for --publish (ca.pem, cert.pem, key.pem of the realm)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Keeps every entry of an existing CRL, adds the new serials, and writes a new CRL (number + 1)
signed by the CA, to --crl or <ca-dir>/${CRL_FILE} (PEM "X509 CRL", mode 0644; 'certs print'
shows it). Revoking a serial that is already listed just re-signs the CRL with a fresh
nextUpdate: do that before nextUpdate passes.

How nodes learn it: with --publish, the node named takes the CRL (signed by the realm CA and
newer than what it holds) and pushes it to its routes, which do the same: every node of the
realm has it within seconds, keeps it in its data directory across restarts, closes the
sessions of revoked peers and refuses their new ones. Without --publish, copy it to a node's
tls.crl: a node reloads that file when it changes (and on SIGHUP), and spreads it the same way.

Examples:
  $ macula certs revoke --cert edge-1.crt --publish quic://10.0.0.7:4433 --creds ./ops
  $ macula certs revoke --serial 4f1b17e58e0eb8c2f7e4ebe0254e5e31 --crl /srv/macula/crl.pem`,
    )
    .action(guarded("macula certs revoke", async (opts) => {
      if ((opts.cert ?? []).length === 0 && (opts.serial ?? []).length === 0) {
        throw usage("nothing to revoke: give --serial or --cert");
      }
      if ((opts.publish === undefined) !== (opts.creds === undefined)) {
        throw usage(
          "--publish and --creds go together: give both (publish the CRL to that node with those credentials) or neither",
        );
      }
      const certs: string[] = [];
      for (const f of opts.cert ?? []) {
        certs.push(
          await readInput(f, {
            want: "certificate",
            role: "certificate",
            flag: "--cert",
            hint: "give the certificate to revoke, or its serial with --serial",
          }),
        );
      }
      const crlPath = opts.crl ?? join(opts.caDir, CRL_FILE);
      if (existsSync(crlPath)) {
        await readInput(crlPath, {
          want: "crl",
          role: "CRL",
          ...(opts.crl !== undefined ? { flag: "--crl" } : {}),
          hint: "the file revoke extends must be a CRL, or absent to start one",
        });
      }
      // The credentials are read before the CRL is written, so a typo in --creds changes nothing.
      if (opts.creds !== undefined) await loadCredsDir(opts.creds);
      const ca = await openCa(opts.caDir);
      const r = await revoke({
        ca,
        serials: opts.serial ?? [],
        certs,
        crlPath,
        reason: opts.reason,
        ...(opts.crlDuration !== undefined ? { durationMs: opts.crlDuration } : {}),
      });
      warn(r.warnings);
      let published: { node: string; accepted: boolean; reason?: string } | undefined;
      if (opts.publish !== undefined) {
        const client = await connect({ url: opts.publish, creds: opts.creds!, reconnect: false })
          .catch((e) => {
            throw new CertsError(
              `wrote ${r.crlPath}, but cannot publish it: ${(e as Error).message}\n` +
                "  run the same revoke with --publish again when the node is reachable (it re-signs " +
                "and hands the CRL over), or copy the CRL to the nodes' tls.crl",
            );
          });
        try {
          const answer = await client.pushCrl(await readText(r.crlPath, "CRL"));
          published = { node: opts.publish, ...answer };
        } finally {
          await client.close();
        }
      }
      if (opts.json) {
        json({
          crlPath: r.crlPath,
          number: r.number,
          added: r.added,
          revoked: r.revoked,
          nextUpdate: r.nextUpdate.toISOString(),
          warnings: r.warnings,
          ...(published ? { published } : {}),
        });
        if (published && !published.accepted) {
          throw new CertsError(
            `wrote ${r.crlPath}, but ${published.node} refused it: ${published.reason}`,
          );
        }
        return;
      }
      line(
        `wrote ${r.crlPath} (CRL number ${r.number}, ${r.revoked.length} revoked, next update ${r.nextUpdate.toISOString()})`,
      );
      for (const s of r.added) line(`  revoked  ${s}`);
      const already = r.revoked.length - r.added.length;
      if (r.added.length === 0) line("  (all of them were already revoked; CRL re-signed)");
      else if (already > 0) line(`  (${already} revoked earlier kept)`);
      if (published?.accepted) line(`published to ${published.node}: it spreads to the mesh`);
      else if (published) {
        throw new CertsError(
          `wrote ${r.crlPath}, but ${published.node} refused it: ${published.reason}`,
        );
      }
    }));
}

/** Builds the `certs` command group. */
export function certsCommand() {
  const ca = new Command("ca").description("manage the realm certificate authority");
  const caInit = caInitCommand();
  ca.addCommand(caInit);
  const certs = new Command("certs")
    .description("realm certificate authority")
    .addCommand(ca)
    .addCommand(keyCommand())
    .addCommand(issueCommand())
    .addCommand(signCommand())
    .addCommand(printCommand())
    .addCommand(verifyCommand())
    .addCommand(revokeCommand())
    .addHelpText(
      "after",
      `
A realm belongs to its CA: nodes and users get certificates naming them as
macula://<realm>/node/<node-id>, and peers accept only chains to the realm's CA.

Examples:
  $ macula certs ca init --realm acme                   CA in ./macula-ca (keep it offline)
  $ macula certs issue --realm acme --name edge-1       edge-1.crt + edge-1.key
  $ macula certs key --name n2                          on n2's host: n2.key + n2.pub.pem
  $ macula certs issue --realm acme --name n2 --in-pub n2.pub.pem   n2.crt; the key stays there
  $ macula certs verify --ca macula-ca/ca.pem edge-1.crt
  $ macula certs revoke --cert edge-1.crt               adds it to macula-ca/crl.pem
  $ macula certs print macula-ca/crl.pem                what the CRL revokes, and until when

Passphrase: with 'ca init --encrypt' the CA key is encrypted (PKCS#8, AES-256-CBC). Commands
that need it read ${PASSPHRASE_ENV}, or ask on the terminal.
Warnings: any certificate or CA within 30 days of expiry is reported on stderr.
Errors: one line on stderr, 'macula certs <command>: <what was wrong>'.
${EXIT_CODES}; 'verify'
adds 3-8 (see 'macula certs verify --help').
Guide: macula docs certificates`,
    );
  for (
    const c of [
      caInit,
      ...certs.commands.filter((c) => !["ca", "verify", "key"].includes(c.name())),
    ]
  ) {
    c.addHelpText("after", `\n${EXIT_CODES}.`);
  }
  // `key` needs no CA and asks no passphrase.
  certs.commands.find((c) => c.name() === "key")!.addHelpText(
    "after",
    "\nExit codes: 0 written, 1 failed (a file exists without --force, cannot write), 2 usage error.",
  );
  return certs;
}

const EXIT_CODES =
  `Exit codes: 0 success, 1 failed (bad file, CA exists, wrong passphrase…), 2 usage error
(bad realm, bad duration…), 130 Ctrl-C at the passphrase prompt (nothing written)`;
