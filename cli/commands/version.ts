/**
 * `macula version` — hidden diagnostic command.
 *
 * Plain, it prints the version like `macula --version`. With `--verbose` it also names the
 * runtime and loads the QUIC addon, printing quiche's protocol version: the quickest proof that
 * a compiled `macula` binary carries a working addon.
 */
import { Command } from "@commander-js/extra-typings";
import process from "node:process";
import { VERSION } from "../../lib/util/mod.ts";

export { VERSION };

/** Describes the JavaScript runtime executing this process, e.g. `bun 1.4.5 (linux x64)`. */
export function runtimeDescription(): string {
  const platform = `${process.platform} ${process.arch}`;
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  if (typeof Bun !== "undefined") return `bun ${Bun.version} (${platform})`;
  if (deno !== undefined) return `deno ${deno.version.deno} (${platform})`;
  return `node ${process.versions.node} (${platform})`;
}

/** True when running from a `bun build --compile` binary (modules live in Bun's embedded fs). */
export function isStandaloneBinary(): boolean {
  return import.meta.url.includes("$bunfs") || import.meta.url.includes("~BUN");
}

/** Formats a QUIC version number as 8 hex digits, e.g. `0x00000001`. */
export function formatQuicVersion(version: number): string {
  return `0x${version.toString(16).padStart(8, "0")}`;
}

/** Builds the `version` command. */
export function versionCommand(): Command<[], { verbose?: true; json?: true }> {
  return new Command("version")
    .description("print the version; --verbose adds the runtime and the QUIC addon it loads")
    .option("-v, --verbose", "also print the runtime and quiche's QUIC protocol version")
    .option("--json", "print as JSON")
    .action(async (options) => {
      const info: Record<string, string> = { version: VERSION };
      if (options.verbose) {
        // Loaded on demand so `--help` and plain `version` never touch the native addon.
        const { quicheProtocolVersion } = await import("../../lib/quic/mod.ts");
        info.runtime = runtimeDescription();
        info.build = isStandaloneBinary() ? "standalone binary" : "source";
        info.quiche = `PROTOCOL_VERSION ${formatQuicVersion(quicheProtocolVersion())}`;
      }
      if (options.json) {
        process.stdout.write(`${JSON.stringify(info)}\n`);
      } else if (!options.verbose) {
        process.stdout.write(`macula ${VERSION}\n`);
      } else {
        process.stdout.write(
          `macula ${VERSION}\n` +
            Object.entries(info)
              .filter(([key]) => key !== "version")
              .map(([key, value]) => `${key}: ${value}\n`)
              .join(""),
        );
      }
    });
}
