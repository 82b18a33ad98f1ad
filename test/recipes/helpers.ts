/**
 * What the recipe tests share: the recipes' folder, a realm with node credentials made
 * in-process, a folder standing in for a container's (or a unit's) file system, and `macula`
 * run from source on a recipe's own command line.
 *
 * A recipe names paths inside its container or host (/etc/macula, /var/lib/macula, /tmp, …).
 * `FakeRoot` maps each such mount point under a temporary folder and rewrites those paths in the
 * recipe's texts (configs, command lines, scripts), so the recipe's own files run here unchanged
 * but for that prefix.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Ca, initCa, issueCert, writeCredsDir } from "../../lib/identity/mod.ts";
import { type Proc, spawnMacula } from "../helpers/proc.ts";
import { type Result, run } from "../helpers/run.ts";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const RECIPES = join(REPO, "recipes");
const MAIN = join(REPO, "cli", "main.ts");
/** The compiled binary (`npm run build`; `npm test` builds it before the tests). */
export const BUILT = join(REPO, "dist", "macula");

const DAY = 86_400_000;

/** The text of a recipe file, e.g. `recipe("systemd/macula.service")`. */
export function recipe(path: string): string {
  return readFileSync(join(RECIPES, path), "utf8");
}

/** dist/macula, or a clear failure naming the command that builds it. */
export function builtBinary(): string {
  if (!existsSync(BUILT) || !statSync(BUILT).isFile()) {
    throw new Error(`${BUILT} is missing: run \`npm run build\` first (\`npm test\` does)`);
  }
  return BUILT;
}

/** A new realm CA (in memory and, with `outDir`, on disk). */
export async function realm(name: string, outDir?: string): Promise<Ca> {
  return (await initCa({
    realm: name,
    durationMs: 365 * DAY,
    ...(outDir !== undefined ? { outDir } : {}),
  })).ca;
}

/** A node certificate and key from `ca`: the files `certs issue` writes, at the given paths. */
export async function nodeFiles(
  ca: Ca,
  name: string,
  to: { ca?: string; cert: string; key: string },
): Promise<void> {
  const c = await issueCert({ ca, name, role: "node", durationMs: 90 * DAY });
  for (const p of [to.ca, to.cert, to.key]) if (p) mkdirSync(dirname(p), { recursive: true });
  if (to.ca) writeFileSync(to.ca, `${ca.pem}\n`);
  writeFileSync(to.cert, `${c.pem}\n`);
  writeFileSync(to.key, `${c.keyPem!}\n`, { mode: 0o600 });
}

/** A credentials directory (ca.pem, cert.pem, key.pem) for a node of `ca`. */
export async function nodeCreds(ca: Ca, name: string, dir: string): Promise<void> {
  const c = await issueCert({ ca, name, role: "node", durationMs: 90 * DAY });
  await writeCredsDir(dir, { ca: ca.pem, cert: c.pem, key: c.keyPem! });
}

/** A temporary folder standing in for `/` of a container or a host, for the given mount points. */
export class FakeRoot {
  readonly #points: string[];
  readonly #re: RegExp;
  constructor(readonly dir: string, points: string[]) {
    // Longest first, so that /etc/macula/creds wins over /etc/macula.
    this.#points = [...points].sort((a, b) => b.length - a.length);
    const alt = this.#points.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|");
    // A mount point where a path starts (not inside a longer name), followed by / or its end.
    this.#re = new RegExp(`(?<![\\w./-])(${alt})(?=[/\\s"':,\\]}]|$)`, "gm");
  }

  /** Makes the folder at container path `p`; its path here. */
  mkdir(p: string): string {
    mkdirSync(this.path(p), { recursive: true });
    return this.path(p);
  }

  /** Where container path `p` is here. */
  path(p: string): string {
    return join(this.dir, p);
  }

  /** `text` with every path under a mount point moved under this folder. */
  rewrite(text: string): string {
    return text.replace(this.#re, (p) => this.path(p));
  }

  /** Writes `text` (rewritten) at container path `p`. */
  write(p: string, text: string, mode = 0o644): string {
    const to = this.path(p);
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, this.rewrite(text), { mode });
    return to;
  }
}

/** Runs `macula ...args` from source and waits for it to exit (bounded). */
export async function macula(
  args: string[],
  o: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; out: string; err: string }> {
  const p: Proc = spawnMacula(args, o);
  const code = await p.code(30_000);
  return { code, out: p.out, err: p.err };
}

/**
 * Writes `<dir>/macula`, a command that runs the CLI from source, for a recipe's shell script
 * that calls `macula` (its folder first on PATH, or the command in $MACULA); returns its path.
 */
export function maculaShim(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, "macula");
  writeFileSync(shim, `#!/bin/sh\nexec '${process.execPath}' '${MAIN}' "$@"\n`);
  chmodSync(shim, 0o755);
  return shim;
}

/** A tool run for a test, bounded; its exit code and output. */
export function tool(cmd: string[], o: { cwd?: string; env?: Record<string, string> } = {}) {
  return run(cmd, { ...o, timeoutMs: 60_000 });
}

/** A certificate file's subjectAltName, as `openssl x509 -ext subjectAltName` prints it. */
export function subjectAltName(cert: string) {
  return tool(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert]);
}

export type { Result };

/** The first line matching `re` in `text`, or a failure showing the text. */
export function match(text: string, re: RegExp): RegExpMatchArray {
  const m = text.match(re);
  if (!m) throw new Error(`no ${re} in:\n${text}`);
  return m;
}
