/**
 * `macula config init [file]` — writes a commented sample node configuration: every section
 * with its default value (lib/node/config.ts `sampleConfig`), ready to edit and to check with
 * `macula node up --config <file> --check`.
 */
import { Command } from "@commander-js/extra-typings";
import { existsSync, writeFileSync } from "node:fs";
import process from "node:process";
import { fileProblem } from "../../lib/identity/mod.ts";
import { sampleConfig } from "../../lib/node/mod.ts";
import { CliFailure, FAILED, guarded, out, usage } from "./shared.ts";

function initCommand() {
  return new Command("init")
    .description("write a commented sample node configuration (every default, ready to edit)")
    .argument("[file]", "where to write it; - for stdout", "macula.yaml")
    .option("--force", "replace the file if it exists")
    .addHelpText(
      "after",
      `
Every value in the sample is the default, so the file as written runs exactly as no file does;
commented-out sections (tls, advertise, permissions, admin, trace) show the form of each.
Relative paths in it are relative to its own folder.

Examples:
  $ macula config init                       writes ./macula.yaml
  $ macula config init /etc/macula/node.yaml
  $ macula config init - | less
  $ macula node up --config macula.yaml --check

Exit codes: 0 written, 1 the file cannot be written, 2 usage error or the file exists
(--force replaces it).

Guide: macula docs operations`,
    )
    .action(guarded("macula config init", async (file, opts) => {
      const text = sampleConfig();
      if (file === "-") {
        await out(text);
        return;
      }
      if (existsSync(file) && !opts.force) {
        throw usage(`${file} exists (--force replaces it)`);
      }
      try {
        writeFileSync(file, text, { mode: 0o644 });
      } catch (e) {
        throw new CliFailure(`cannot write ${file}: ${fileProblem(e)}`, FAILED);
      }
      process.stderr.write(
        `wrote ${file}; check it with: macula node up --config ${file} --check\n`,
      );
    }));
}

/** Builds the `config` command group. */
export function configCommand() {
  return new Command("config")
    .description("node configuration files")
    .addCommand(initCommand())
    .addHelpText(
      "after",
      `
Examples:
  $ macula config init                       a commented sample in ./macula.yaml

Guide: macula docs operations`,
    );
}
