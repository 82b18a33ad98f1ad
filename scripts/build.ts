/**
 * `npm run build` — compiles the `macula` CLI into one standalone binary at `dist/macula`.
 *
 * The binary embeds the Bun runtime, every module and the QUIC Node-API addon (which
 * `lib/quic/native.ts` requires by a literal path so the bundler can see it), so it runs from an
 * empty folder with no node_modules.
 *
 * Flags, and why:
 * - `--minify`: smaller bundle, faster start; checked not to break anything (test/cli).
 * - `--sourcemap`: with `--compile` the map is embedded, so stack traces point at the `.ts`
 *   sources. The external `.map` bun also writes is redundant and removed.
 * - `--no-compile-autoload-bunfig` / `--no-compile-autoload-dotenv`: the binary must not pick up
 *   a `bunfig.toml` or `.env` from whatever directory it is started in.
 *
 * Usage: bun run scripts/build.ts [--outfile PATH]
 */
import { spawn } from "node:child_process";
import { rm, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = "cli/main.ts";
/** A build takes about a second; anything near this means something hangs. */
const TIMEOUT_MS = 5 * 60_000;

function outfileFromArgs(args: readonly string[]): string {
  const at = args.indexOf("--outfile");
  const value = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && value === undefined) throw new Error("--outfile needs a path");
  return resolve(ROOT, value ?? join("dist", "macula"));
}

/** Runs bun with `args` in the repository root, inheriting stdio; resolves to its exit code. */
function runBun(args: readonly string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: "inherit" });
    const timer = setTimeout(() => {
      process.stderr.write(`build: bun build still running after ${TIMEOUT_MS / 1000}s, killed\n`);
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

async function main(): Promise<number> {
  if (typeof Bun === "undefined") {
    process.stderr.write("build: run with bun (npm run build)\n");
    return 1;
  }
  const outfile = outfileFromArgs(process.argv.slice(2));
  const started = performance.now();
  const code = await runBun([
    "build",
    "--compile",
    "--minify",
    "--sourcemap",
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-dotenv",
    ENTRY,
    "--outfile",
    outfile,
  ]);
  if (code !== 0) {
    process.stderr.write(`build: bun build --compile failed (exit ${code})\n`);
    return code;
  }
  await rm(`${outfile}.map`, { force: true });
  const { size } = await stat(outfile);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`build: ${relative(ROOT, outfile)} ${formatSize(size)} in ${seconds}s\n`);
  return 0;
}

process.exitCode = await main();
