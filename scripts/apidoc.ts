/**
 * `npm run docs` — the API reference, generated from the doc comments of what mod.ts exports:
 * `deno doc --html` writes it to dist/api (open dist/api/index.html), then the exports without
 * a doc comment of their own are listed (test/docs/guides.test.ts fails on new ones).
 *
 * Usage: bun run scripts/apidoc.ts [--output DIR]     (default dist/api)
 * Exit: 0 written, 1 deno doc failed, 2 usage.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = "mod.ts";

/** The repository's deno (an npm dependency), else the one on PATH. */
function deno(): string {
  const local = join(ROOT, "node_modules", ".bin", "deno");
  return existsSync(local) ? local : "deno";
}

/** Runs `deno doc` with `args`; its stdout, or throws with its stderr. */
function denoDoc(args: string[]): string {
  // -q: deno doc warns about every @types/node file it cannot resolve, none of which is ours.
  const r = spawnSync(deno(), ["doc", "-q", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
  });
  if (r.error) throw new Error(`cannot run deno: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`deno doc ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

/** One symbol exported by the entry point. */
export interface ExportDoc {
  readonly name: string;
  /** The file that declares it (relative to the repository when inside it). */
  readonly file: string;
  /** Whether one of its declarations carries a doc comment. */
  readonly documented: boolean;
}

interface DocJson {
  nodes: Record<string, { symbols: { name: string; declarations: DocDecl[] }[] }>;
}
interface DocDecl {
  location?: { filename?: string };
  jsDoc?: { doc?: string };
}

/** What mod.ts exports, read by `deno doc --json`, each with whether it has a doc comment. */
export function exportDocs(): ExportDoc[] {
  const json = JSON.parse(denoDoc(["--json", ENTRY])) as DocJson;
  const entry = Object.entries(json.nodes).find(([url]) => url.endsWith(`/${ENTRY}`));
  if (entry === undefined) throw new Error(`deno doc --json: no ${ENTRY} in its output`);
  return entry[1].symbols.map((s) => {
    const url = s.declarations[0]?.location?.filename ?? "";
    const path = url.startsWith("file://") ? fileURLToPath(url) : url;
    return {
      name: s.name,
      file: path.startsWith(`${ROOT}/`) ? path.slice(ROOT.length + 1) : path,
      documented: s.declarations.some((d) => (d.jsDoc?.doc ?? "").trim() !== ""),
    };
  });
}

/** Writes the HTML reference of mod.ts to `output`. */
export function writeApiDocs(output: string): void {
  denoDoc(["--html", "--name=Macula", `--output=${output}`, ENTRY]);
}

function main(argv: string[]): number {
  let output = join(ROOT, "dist", "api");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--output" && argv[i + 1] !== undefined) output = resolve(argv[++i]!);
    else {
      process.stderr.write(`usage: bun run scripts/apidoc.ts [--output DIR]\n`);
      return 2;
    }
  }
  try {
    writeApiDocs(output);
    const docs = exportDocs();
    const missing = docs.filter((d) => !d.documented);
    process.stdout.write(
      `API reference of ${ENTRY} (${docs.length} exports) written to ${
        join(output, "index.html")
      }\n`,
    );
    if (missing.length > 0) {
      process.stdout.write(
        `${missing.length} without a doc comment:\n${
          missing.map((d) => `  ${d.name} (${d.file})\n`).join("")
        }`,
      );
    }
    return 0;
  } catch (e) {
    process.stderr.write(`apidoc: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (import.meta.main) process.exitCode = main(process.argv.slice(2));
