/**
 * Key pairs for `macula certs key`: the private key stays on its host, the public key goes to
 * the CA (`macula certs issue --in-pub`), and the certificate comes back. Written as
 * `<out>/<name>.key` (unencrypted PKCS#8 PEM, mode 0600: a node or client reads it unattended)
 * and `<out>/<name>.pub.pem` (SubjectPublicKeyInfo PEM, mode 0644), both or neither.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, lstat, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import {
  checkName,
  FileError,
  fileProblem,
  generateKeyPair,
  type KeyType,
  nodeIdFromSpki,
  nodeIdText,
  x509,
} from "../lib/identity/mod.ts";

/** Options for `makeKeyPair`. */
export interface KeyPairOptions {
  /** The file name (and the name to give `certs issue --name`): `<name>.key`, `<name>.pub.pem`. */
  name: string;
  /** Directory for both files; made when missing. */
  outDir: string;
  keyType: KeyType;
  /** Replace existing files (the old key is lost, and certificates for it stop being usable). */
  force?: boolean;
}

/** What `makeKeyPair` wrote. */
export interface KeyPairMade {
  name: string;
  keyType: KeyType;
  /** The node id a certificate for this key names (SHA-256 of the SPKI, base32). */
  nodeId: string;
  keyPath: string;
  publicKeyPath: string;
  publicKeyPem: string;
}

/** Makes a key pair and writes `<name>.key` (0600) and `<name>.pub.pem` (0644) into `outDir`. */
export async function makeKeyPair(opts: KeyPairOptions): Promise<KeyPairMade> {
  const name = checkName(opts.name);
  const keyPath = join(opts.outDir, `${name}.key`);
  const publicKeyPath = join(opts.outDir, `${name}.pub.pem`);
  if (!opts.force) {
    for (const p of [keyPath, publicKeyPath]) {
      if (existsSync(p)) throw new FileError(`${p} already exists (use --force to replace it)`);
    }
  }
  const keys = await generateKeyPair(opts.keyType);
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const publicKeyPem = x509.PemConverter.encode(spki.buffer, "PUBLIC KEY");
  await writeTogether([
    { path: keyPath, data: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`, mode: 0o600 },
    { path: publicKeyPath, data: `${publicKeyPem}\n`, mode: 0o644 },
  ], opts.force ?? false);
  return {
    name,
    keyType: opts.keyType,
    nodeId: nodeIdText(nodeIdFromSpki(spki)),
    keyPath,
    publicKeyPath,
    publicKeyPem,
  };
}

/**
 * Writes files as a group: each to a temporary name beside it (with its mode from the start,
 * so a key is never readable by others), then renamed into place. On an error the temporary
 * files, the files placed (unless `force`) and a directory made here are removed.
 */
async function writeTogether(
  files: { path: string; data: string; mode: number }[],
  force: boolean,
): Promise<void> {
  const dir = dirname(resolve(files[0]!.path));
  let made: string | undefined;
  const temps: string[] = [];
  const placed: string[] = [];
  let at = dirname(files[0]!.path);
  try {
    if (!existsSync(dir)) made = await mkdir(dir, { recursive: true, mode: 0o755 });
    else if (!(await lstat(dir)).isDirectory()) {
      throw new FileError(`${at} is not a directory`);
    }
    for (const f of files) {
      at = f.path;
      const tmp = join(dir, `.${basename(f.path)}.${randomBytes(6).toString("hex")}.tmp`);
      temps.push(tmp);
      await writeFile(tmp, f.data, { mode: f.mode, flag: "wx" });
      await chmod(tmp, f.mode); // exact, whatever the umask
    }
    for (const [i, f] of files.entries()) {
      at = f.path;
      await rename(temps[i]!, f.path);
      placed.push(f.path);
    }
  } catch (e) {
    for (const t of temps) await rm(t, { force: true }).catch(() => {});
    if (!force) { for (const p of placed) await rm(p, { force: true }).catch(() => {}); }
    if (made) await rm(made, { recursive: true, force: true }).catch(() => {});
    if (e instanceof FileError) throw e;
    throw new FileError(`cannot write ${at}: ${fileProblem(e)}`, { cause: e });
  }
}
