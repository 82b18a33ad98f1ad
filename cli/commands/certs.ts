/**
 * `macula certs` — the realm certificate authority: create a CA, issue and sign node and user
 * certificates, print, verify and revoke them. A thin shell over the realm CA of lib/identity
 * and the tool's own parts in certs-tool/ (print, verify's exit codes, duration flags); the
 * operator's guide is docs/certificates.md.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "@commander-js/extra-typings";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  describeCert,
  parseDuration,
  VERIFY_EXIT_CODES,
  verifyCert,
} from "../../certs-tool/mod.ts";
import {
  type Ca,
  CA_KEY_FILE,
  caKeyEncrypted,
  CertsError,
  checkName,
  CRL_FILE,
  IDENTITY_DEFAULTS,
  initCa,
  issueCert,
  type Issued,
  loadCa,
  readText,
  realmProblem,
  realmTagHex,
  revoke,
  REVOKE_REASONS,
  type Role,
  ROLES,
  signCsr,
  writeCredsDir,
} from "../../lib/identity/mod.ts";
import { guarded, usage } from "./shared.ts";
import { connect } from "../../lib/client/mod.ts";

/** Environment variable holding the CA passphrase (otherwise it is asked on the terminal). */
export const PASSPHRASE_ENV = "MACULA_CA_PASSPHRASE";
/** Default CA directory. */
export const DEFAULT_CA_DIR = "macula-ca";

const line = (s: string) => process.stdout.write(`${s}\n`);
const warn = (lines: readonly string[]) => {
  for (const l of lines) process.stderr.write(`${l}\n`);
};
const json = (v: unknown) => line(JSON.stringify(v, null, 2));

// ---- option parsers ------------------------------------------------------------------------

function realmArg(v: string): string {
  const p = realmProblem(v);
  if (p) throw new InvalidArgumentError(`invalid realm ${JSON.stringify(v)}: ${p}`);
  return v;
}

function durationArg(v: string): number {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function nameArg(v: string): string {
  try {
    return checkName(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** Repeatable, comma-separated list option. */
function listArg(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];
}

function repeatArg(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

// ---- shared helpers ------------------------------------------------------------------------

/** Reads a line from the terminal without echoing it. */
function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let buf = "";
    const done = () => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          done();
          resolve(buf);
          return;
        }
        if (ch === "\u0003" || ch === "\u0004") {
          done();
          reject(new CertsError("cancelled"));
          return;
        }
        if (ch === "\u007f" || ch === "\b") buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on("data", onData);
  });
}

/** The CA passphrase: from MACULA_CA_PASSPHRASE, else asked on the terminal. */
async function passphrase(confirm: boolean): Promise<string> {
  const env = process.env[PASSPHRASE_ENV];
  if (env) return env;
  if (!process.stdin.isTTY) {
    throw new CertsError(
      `the CA key needs a passphrase: set ${PASSPHRASE_ENV} or run on a terminal to be asked`,
    );
  }
  const first = await askHidden("CA passphrase: ");
  if (confirm && (await askHidden("again: ")) !== first) {
    throw new CertsError("the passphrases do not match");
  }
  return first;
}

async function openCa(dir: string): Promise<Ca> {
  let encrypted = false;
  if (existsSync(join(dir, CA_KEY_FILE))) encrypted = await caKeyEncrypted(dir).catch(() => false);
  return loadCa(dir, encrypted ? await passphrase(false) : undefined);
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
      new Option("--key-type <type>", "CA key algorithm").choices(["ed25519", "p256"] as const)
        .default("ed25519" as const),
    )
    .option("--encrypt", `encrypt ca.key with a passphrase (from ${PASSPHRASE_ENV} or asked)`)
    .option("--force", "replace a CA already in --out")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
The CA certificate is CN=Macula realm CA <realm>, O=Macula, with basicConstraints CA
(pathLen 0), keyUsage keyCertSign and cRLSign, and the SAN URI macula://<realm>/ca.
Default duration 8760h (one year). Keep the CA directory offline; see docs/certificates.md.

Examples:
  $ macula certs ca init --realm acme
  $ MACULA_CA_PASSPHRASE=... macula certs ca init --realm com.acme.prod --out /secure/ca --encrypt`,
    )
    .action(guarded("macula certs ca init", async (opts) => {
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
    .option("--groups <a,b>", "groups, comma-separated or repeated", listArg)
    .option("--dns <names>", "DNS names, comma-separated or repeated", listArg)
    .option("--ip <addrs>", "IP addresses, comma-separated or repeated", listArg)
    .option(
      "--duration <d>",
      "validity (default 2160h = 90 days; cut to the CA's expiry)",
      durationArg,
    )
    .option("--in-pub <file>", "sign this PEM public key instead of making a key pair")
    .option("--ca-dir <dir>", "the CA directory", DEFAULT_CA_DIR)
    .option("--out <dir>", "directory for <name>.crt and <name>.key", ".")
    .option("--force", "replace existing files")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Writes <out>/<name>.crt and, unless --in-pub is given, <out>/<name>.key (PKCS#8, mode 0600);
with --creds-dir, a credentials directory for clients instead (ca.pem, cert.pem, key.pem).

The role says what the certificate may do (docs/security.md). --role node (the default: what
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
      const ca = await openCa(opts.caDir);
      if (ca.realm !== opts.realm) {
        throw new CertsError(`the CA in ${opts.caDir} is for realm ${ca.realm}, not ${opts.realm}`);
      }
      if (opts.credsDir !== undefined && opts.inPub !== undefined) {
        throw usage(
          "--creds-dir needs the key, and --in-pub leaves it elsewhere: give one of them",
        );
      }
      const pub = opts.inPub === undefined ? undefined : await readText(opts.inPub, "public key");
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
    .option("--groups <a,b>", "groups, comma-separated or repeated", listArg)
    .option("--dns <names>", "extra DNS names", listArg)
    .option("--ip <addrs>", "extra IP addresses", listArg)
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
URIs, key usage and validity always come from the CA.

Example:
  $ openssl genpkey -algorithm ed25519 -out node.key
  $ openssl req -new -key node.key -subj /CN=edge-2 -out node.csr
  $ macula certs sign --csr node.csr --out edge-2.crt`,
    )
    .action(guarded("macula certs sign", async (opts) => {
      const csrPem = await readText(opts.csr, "request");
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

function printCommand() {
  return new Command("print")
    .description("show what a certificate says: names, realm, role, node id, groups, validity")
    .argument("<file>", "certificate, PEM")
    .option("--json", "print as JSON")
    .addHelpText("after", `\nExample:\n  $ macula certs print --json edge-1.crt`)
    .action(guarded("macula certs print", async (file, opts) => {
      const { info, warnings } = describeCert(await readText(file, "certificate"));
      warn(warnings);
      if (opts.json) return json(info);
      const rows: [string, string][] = [
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
      ];
      for (const [k, v] of rows) line(`${k.padEnd(10)} ${v}`);
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
  1  inputs unreadable: missing file, CA not a Macula CA, CRL not signed by the CA
  2  usage error

Example:
  $ macula certs verify --ca macula-ca/ca.pem --crl macula-ca/crl.pem --realm acme edge-1.crt`,
    )
    .action(guarded("macula certs verify", async (file, opts) => {
      const certPem = await readText(file, "certificate");
      const caPem = await readText(opts.ca, "CA certificate");
      const crlPem = opts.crl === undefined ? undefined : await readText(opts.crl, "CRL");
      const r = await verifyCert({
        caPem,
        certPem,
        ...(crlPem !== undefined ? { crlPem } : {}),
        ...(opts.realm !== undefined ? { realm: opts.realm } : {}),
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
    .option("--serial <hex>", "serial number to revoke (repeatable)", repeatArg)
    .option("--cert <file>", "certificate to revoke (repeatable)", repeatArg)
    .option("--ca-dir <dir>", "the CA directory", DEFAULT_CA_DIR)
    .option("--crl <file>", `the CRL to extend and rewrite (default <ca-dir>/${CRL_FILE})`)
    .addOption(
      new Option("--reason <reason>", "revocation reason recorded").choices(REVOKE_REASONS)
        .default("cessationOfOperation" as const),
    )
    .option("--crl-duration <d>", "CRL lifetime, its nextUpdate (default 30d)", durationArg)
    .option("--publish <url>", "then hand the new CRL to this node (quic://host:port): it spreads")
    .option("--creds <dir>", "credentials for --publish (ca.pem, cert.pem, key.pem of the realm)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Keeps every entry of an existing CRL, adds the new serials, and writes a new CRL (number + 1)
signed by the CA. Revoking a serial that is already listed just re-signs the CRL with a fresh
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
      const certs: string[] = [];
      for (const f of opts.cert ?? []) certs.push(await readText(f, "certificate"));
      if (certs.length === 0 && (opts.serial ?? []).length === 0) {
        throw new CertsError("nothing to revoke: give --serial or --cert");
      }
      if ((opts.publish === undefined) !== (opts.creds === undefined)) {
        throw usage(
          "--publish and --creds go together: give both (publish the CRL to that node with those credentials) or neither",
        );
      }
      const ca = await openCa(opts.caDir);
      const r = await revoke({
        ca,
        serials: opts.serial ?? [],
        certs,
        crlPath: opts.crl ?? join(opts.caDir, CRL_FILE),
        reason: opts.reason,
        ...(opts.crlDuration !== undefined ? { durationMs: opts.crlDuration } : {}),
      });
      warn(r.warnings);
      let published: { node: string; accepted: boolean; reason?: string } | undefined;
      if (opts.publish !== undefined) {
        const client = await connect({ url: opts.publish, creds: opts.creds!, reconnect: false })
          .catch((e) => {
            throw new CertsError(
              `wrote ${r.crlPath}, but cannot publish it: ${(e as Error).message}`,
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
          throw new CertsError(`${published.node} refused the CRL: ${published.reason}`);
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
  ca.addCommand(caInitCommand());
  return new Command("certs")
    .description("realm certificate authority")
    .addCommand(ca)
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
  $ macula certs issue --realm acme --name n2 --in-pub n2.pub.pem   the key stays on its host
  $ macula certs verify --ca macula-ca/ca.pem edge-1.crt
  $ macula certs revoke --cert edge-1.crt               adds it to macula-ca/crl.pem

Passphrase: with 'ca init --encrypt' the CA key is encrypted (PKCS#8, AES-256-CBC). Commands
that need it read ${PASSPHRASE_ENV}, or ask on the terminal.
Warnings: any certificate or CA within 30 days of expiry is reported on stderr.
Exit codes: 0 success, 1 failed (bad file, CA exists, wrong passphrase…), 2 usage error
(bad realm, bad duration…); 'verify' adds 3-8 (see 'macula certs verify --help').
Guide: docs/certificates.md`,
    );
}
