/**
 * `npm run build` — builds what the repository ships, into `dist/`:
 *
 * - `dist/macula` (target `bin`): the `macula` CLI as one standalone binary. It embeds the Bun
 *   runtime, every module and the QUIC Node-API addon (which `lib/quic/native.ts` requires by a
 *   literal path so the bundler can see it), so it runs from an empty folder with no
 *   node_modules.
 * - `dist/lib/` (target `lib`): the library, what `import … from "macula"` loads on Node, Deno and
 *   Bun (package.json `exports`): `mod.js`, one ESM bundle of mod.ts and everything it imports
 *   except the npm dependencies, which stay imports (the QUIC addon is `@matrixai/quic`'s); and
 *   `mod.d.ts` with the declarations of every module it reaches (`tsc -p tsconfig.lib.json`).
 *   Nothing in it is Bun-only: `typeof Bun` checks stay in the bundle, so on Bun it still takes
 *   the `Bun.udpSocket` fast path and elsewhere `node:dgram`.
 *
 * Flags of the binary, and why:
 * - `--minify`: smaller bundle, faster start; checked not to break anything (test/cli).
 * - `--sourcemap`: with `--compile` the map is embedded, so stack traces point at the `.ts`
 *   sources. The external `.map` bun also writes is redundant and removed.
 * - `--no-compile-autoload-bunfig` / `--no-compile-autoload-dotenv`: the binary must not pick up
 *   a `bunfig.toml` or `.env` from whatever directory it is started in.
 *
 * The library is not minified (it is read in stack traces and debuggers; `mod.js.map` maps it to
 * the sources).
 *
 * Usage: bun run scripts/build.ts [bin|lib]... [--outfile PATH]
 *   no target builds both; `--outfile` moves the binary (default dist/macula). `npm pack` runs
 *   the `lib` target first (package.json `prepack`).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN_ENTRY = "cli/main.ts";
const LIB_ENTRY = "mod.ts";
const LIB_DIR = join(ROOT, "dist", "lib");
/** A build takes seconds; anything near this means something hangs. */
const TIMEOUT_MS = 5 * 60_000;
const TARGETS = ["bin", "lib"] as const;
type Target = (typeof TARGETS)[number];

interface Args {
  readonly targets: readonly Target[];
  readonly outfile: string;
}

/** Parses the command line; throws naming the argument that is wrong. */
export function parseArgs(args: readonly string[]): Args {
  const targets: Target[] = [];
  let outfile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--outfile") {
      outfile = args[++i];
      if (outfile === undefined) throw new Error("--outfile needs a path");
    } else if ((TARGETS as readonly string[]).includes(arg)) {
      if (!targets.includes(arg as Target)) targets.push(arg as Target);
    } else {
      throw new Error(`unknown argument '${arg}' (targets: ${TARGETS.join(", ")}; --outfile PATH)`);
    }
  }
  return {
    targets: targets.length > 0 ? targets : TARGETS,
    outfile: resolve(ROOT, outfile ?? join("dist", "macula")),
  };
}

/** Runs `tool` (bun itself, or one of node_modules/.bin) in the repository root; its exit code. */
function run(tool: "bun" | "tsc", args: readonly string[]): Promise<number> {
  const local = join(ROOT, "node_modules", ".bin", tool);
  const command = tool === "bun" ? process.execPath : existsSync(local) ? local : tool;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: "inherit" });
    const timer = setTimeout(() => {
      process.stderr.write(`build: ${tool} still running after ${TIMEOUT_MS / 1000}s, killed\n`);
      child.kill("SIGKILL");
    }, TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolvePromise(code ?? (signal === null ? 1 : 128));
    });
  });
}

function formatSize(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB (${bytes} bytes)`;
}

async function buildBin(outfile: string): Promise<number> {
  const code = await run("bun", [
    "build",
    "--compile",
    "--minify",
    "--sourcemap",
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-dotenv",
    BIN_ENTRY,
    "--outfile",
    outfile,
  ]);
  if (code !== 0) {
    process.stderr.write(`build: bun build --compile failed (exit ${code})\n`);
    return code;
  }
  await rm(`${outfile}.map`, { force: true });
  const { size } = await stat(outfile);
  process.stdout.write(`build: ${relative(ROOT, outfile)} ${formatSize(size)}\n`);
  return 0;
}

async function countFiles(dir: string, suffix: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((name) => name.endsWith(suffix)).length;
}

async function buildLib(): Promise<number> {
  await rm(LIB_DIR, { recursive: true, force: true }); // no declarations of deleted modules
  const bundled = await run("bun", [
    "build",
    LIB_ENTRY,
    "--target",
    "node",
    "--format",
    "esm",
    "--packages",
    "external",
    "--sourcemap=linked",
    "--outdir",
    LIB_DIR,
  ]);
  if (bundled !== 0) {
    process.stderr.write(`build: bun build of the library failed (exit ${bundled})\n`);
    return bundled;
  }
  const declared = await run("tsc", ["-p", "tsconfig.lib.json"]);
  if (declared !== 0) {
    process.stderr.write(
      `build: tsc -p tsconfig.lib.json (declarations) failed (exit ${declared})\n`,
    );
    return declared;
  }
  const { size } = await stat(join(LIB_DIR, "mod.js"));
  const declarations = await countFiles(LIB_DIR, ".d.ts");
  process.stdout.write(
    `build: ${relative(ROOT, LIB_DIR)}/mod.js ${formatSize(size)}, ${declarations} .d.ts files\n`,
  );
  return 0;
}

async function main(): Promise<number> {
  if (typeof Bun === "undefined") {
    process.stderr.write("build: run with bun (npm run build)\n");
    return 1;
  }
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`build: ${(error as Error).message}\n`);
    return 2;
  }
  const started = performance.now();
  for (const target of args.targets) {
    const code = target === "bin" ? await buildBin(args.outfile) : await buildLib();
    if (code !== 0) return code;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`build: ${args.targets.join(" and ")} done in ${seconds}s\n`);
  return 0;
}

if (import.meta.main) process.exitCode = await main();
