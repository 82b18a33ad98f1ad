/**
 * Credentials: the realm CA, a certificate it issued, and that certificate's private key, as PEM
 * texts. Nodes and clients hold the same kind; on disk a credentials directory holds them as
 * `ca.pem`, `cert.pem` and `key.pem` (what `macula node up` writes for local clients, and what
 * `--creds` names).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { FileError } from "./errors.ts";
import { fileProblem, writeAll } from "./files.ts";

/** PEM texts for an endpoint: the realm CA, a certificate it issued, and that certificate's key. */
export interface Credentials {
  ca: string;
  cert: string;
  key: string;
}

/** Files of a credentials directory. */
export const CREDS_FILES = { ca: "ca.pem", cert: "cert.pem", key: "key.pem" } as const;

/** Reads a credentials directory (ca.pem, cert.pem, key.pem), naming a missing file. */
export async function loadCredsDir(dir: string): Promise<Credentials> {
  const out: Partial<Credentials> = {};
  for (const [k, f] of Object.entries(CREDS_FILES) as [keyof Credentials, string][]) {
    const path = join(dir, f);
    try {
      out[k] = await readFile(path, "utf8");
    } catch (e) {
      throw new FileError(
        `credentials: cannot read ${path}: ${fileProblem(e)}; a ` +
          `credentials directory holds ${Object.values(CREDS_FILES).join(", ")}`,
        { cause: e },
      );
    }
  }
  return out as Credentials;
}

/**
 * Writes a credentials directory (what `--creds` reads): ca.pem and cert.pem (0644), key.pem
 * (0600), all or none. Existing files are refused unless `force`.
 */
export async function writeCredsDir(
  dir: string,
  creds: Credentials,
  opts: { force?: boolean } = {},
): Promise<{ ca: string; cert: string; key: string }> {
  const paths = {
    ca: join(dir, CREDS_FILES.ca),
    cert: join(dir, CREDS_FILES.cert),
    key: join(dir, CREDS_FILES.key),
  };
  const nl = (s: string) => (s.endsWith("\n") ? s : `${s}\n`);
  await writeAll([
    { path: paths.ca, data: nl(creds.ca) },
    { path: paths.cert, data: nl(creds.cert) },
    { path: paths.key, data: nl(creds.key), mode: 0o600 },
  ], opts);
  return paths;
}
