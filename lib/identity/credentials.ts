/**
 * Credentials: the realm CA, a certificate it issued, and that certificate's private key, as PEM
 * texts. Nodes and clients hold the same kind; on disk a credentials directory holds them as
 * `ca.pem`, `cert.pem` and `key.pem` (what `macula node up` writes for local clients, and what
 * `--creds` names).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { FileError } from "./errors.ts";

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
        `credentials: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e}); a ` +
          `credentials directory holds ${Object.values(CREDS_FILES).join(", ")}`,
        { cause: e },
      );
    }
  }
  return out as Credentials;
}
