/**
 * `macula context` — saved client contexts (node address + credentials), like the nats CLI's:
 * add, use, ls, show, rm. A thin shell over lib/client/contexts.ts; the guide is
 * docs/contexts.md.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  type Context,
  contextNameProblem,
  ContextStore,
  CREDS_FILES,
  ENV,
} from "../../lib/client/mod.ts";
import { parseUrl, UrlError } from "../../lib/peer/mod.ts";
import { guarded } from "./shared.ts";

const line = (s: string) => process.stdout.write(`${s}\n`);
const warn = (command: string, s: string) =>
  process.stderr.write(`macula context ${command}: warning: ${s}\n`);
const json = (v: unknown) => line(JSON.stringify(v, null, 2));

// ---- argument parsers ----------------------------------------------------------------------

function nameArg(v: string): string {
  const p = contextNameProblem(v);
  if (p) throw new InvalidArgumentError(`context name ${JSON.stringify(v)} ${p}`);
  return v;
}

function serverArg(v: string): string {
  try {
    return parseUrl(v, "--server").url;
  } catch (e) {
    if (e instanceof UrlError) throw new InvalidArgumentError(e.message);
    throw e;
  }
}

function credsArg(v: string): string {
  if (v === "") throw new InvalidArgumentError("--creds: an empty path");
  return v;
}

// ---- shared helpers ------------------------------------------------------------------------

/** Which credential files are missing from `dir` (all of them if it is not a directory). */
function missingCreds(dir: string): string[] {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // missing
  }
  if (!isDir) return [...CREDS_FILES];
  return CREDS_FILES.filter((f) => !existsSync(join(dir, f)));
}

function contextJson(c: Context, current: string | null) {
  return {
    name: c.name,
    server: c.server,
    creds: c.creds ?? null,
    description: c.description ?? null,
    current: c.name === current,
  };
}

// ---- subcommands ---------------------------------------------------------------------------

function addCommand() {
  return new Command("add")
    .description("save a context: a node address and the credentials to reach it")
    .argument("<name>", "context name: 1-64 letters, digits, '_', '.', '-'", nameArg)
    .requiredOption(
      "--server <url>",
      "node address, quic://host[:port] (port 4433 if left out)",
      serverArg,
    )
    .option(
      "--creds <dir>",
      "credentials directory (ca.pem, cert.pem, key.pem); stored absolute",
      credsArg,
    )
    .option("--description <text>", "a note shown by 'ls' and 'show'")
    .option("--use", "also make it the current context")
    .option("--force", "replace a context with the same name")
    .addHelpText(
      "after",
      `
A relative --creds is resolved against the working directory and saved as an absolute path.
Without --creds, commands use MACULA_CREDS or ./macula-data/client (see macula docs contexts).
A --creds directory that lacks ca.pem, cert.pem or key.pem is saved with a warning.

Examples:
  $ macula context add local --server quic://127.0.0.1 --creds macula-data/client --use
  $ macula context add acme --server quic://edge-1.acme.example:4433 --creds ~/acme/laptop \\
      --description "acme production"
  $ macula context add v6 --server 'quic://[2001:db8::7]:7000' --force`,
    )
    .action(guarded("macula context add", (name: string, opts) => {
      const store = ContextStore.open();
      const saved = store.add(
        {
          name,
          server: opts.server,
          ...(opts.creds !== undefined ? { creds: opts.creds } : {}),
          ...(opts.description !== undefined ? { description: opts.description } : {}),
        },
        { force: opts.force ?? false },
      );
      if (saved.creds !== undefined) {
        const missing = missingCreds(saved.creds);
        if (missing.length > 0) warn("add", `${saved.creds} lacks ${missing.join(", ")}`);
      }
      if (opts.use) store.use(name);
      line(
        `saved context ${name} (${saved.server})${
          opts.use ? ", now current" : ""
        } in ${store.path}`,
      );
    }));
}

function useCommand() {
  return new Command("use")
    .description("make a context the current one (what commands use by default)")
    .argument("<name>", "context name", nameArg)
    .addHelpText(
      "after",
      `
--server, --context and then MACULA_URL / MACULA_CREDS still win over the current context
(macula docs contexts).

Example:
  $ macula context use acme`,
    )
    .action(guarded("macula context use", (name: string) => {
      const store = ContextStore.open();
      const c = store.use(name);
      line(`using context ${c.name} (${c.server})`);
      // The environment beats the current context, not a --context flag naming it.
      const overridden = [
        ...(process.env[ENV.url] ? [`${ENV.url} is set and overrides this context's server`] : []),
        ...(process.env[ENV.creds] && c.creds !== undefined
          ? [`${ENV.creds} is set and overrides this context's creds`]
          : []),
      ];
      for (const w of overridden) {
        warn("use", `${w} (unless a command is given --context ${c.name})`);
      }
    }));
}

function lsCommand() {
  return new Command("ls")
    .alias("list")
    .description("list saved contexts; the current one is marked with *")
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      `
Examples:
  $ macula context ls
  $ macula context ls --json | jq -r '.contexts[].name'`,
    )
    .action(guarded("macula context ls", (opts) => {
      const store = ContextStore.open();
      const all = store.list();
      const current = store.current()?.name ?? null;
      if (opts.json) {
        return json({
          file: store.path,
          current,
          contexts: all.map((c) => contextJson(c, current)),
        });
      }
      if (all.length === 0) {
        line(`no contexts saved (${store.path})`);
        line("add one: macula context add <name> --server quic://host:port --creds <dir>");
        return;
      }
      const nameW = Math.max(4, ...all.map((c) => c.name.length));
      const serverW = Math.max(6, ...all.map((c) => c.server.length));
      const credsW = Math.max(5, ...all.map((c) => (c.creds ?? "-").length));
      const row = (mark: string, n: string, s: string, cr: string, d: string) =>
        `${mark} ${n.padEnd(nameW)}  ${s.padEnd(serverW)}  ${cr.padEnd(credsW)}  ${d}`.trimEnd();
      line(row(" ", "NAME", "SERVER", "CREDS", "DESCRIPTION"));
      for (const c of all) {
        line(
          row(
            c.name === current ? "*" : " ",
            c.name,
            c.server,
            c.creds ?? "-",
            c.description ?? "",
          ),
        );
      }
    }));
}

function showCommand() {
  return new Command("show")
    .description("show one context (default: the current one)")
    .argument("[name]", "context name", nameArg)
    .option("--json", "print as JSON")
    .addHelpText(
      "after",
      `
Also checks that the credentials directory holds ca.pem, cert.pem and key.pem.

Examples:
  $ macula context show
  $ macula context show acme --json`,
    )
    .action(guarded("macula context show", (name: string | undefined, opts) => {
      const store = ContextStore.open();
      const currentName = store.current()?.name ?? null;
      let c: Context;
      if (name !== undefined) {
        c = store.get(name);
      } else {
        const cur = store.current();
        if (!cur) {
          throw new Error(
            "no context is current: name one, or run 'macula context use <name>' " +
              "('macula context ls' lists them)",
          );
        }
        c = cur;
      }
      const missing = c.creds === undefined ? [] : missingCreds(c.creds);
      if (name === undefined) {
        for (const key of [ENV.url, ENV.creds]) {
          if (process.env[key]) {
            warn("show", `${key} is set and overrides this context (unless --context names it)`);
          }
        }
      }
      if (opts.json) {
        return json({ ...contextJson(c, currentName), missingCreds: missing, file: store.path });
      }
      const rows: [string, string][] = [
        ["name", c.name],
        ["server", c.server],
        [
          "creds",
          c.creds === undefined
            ? `- (commands use ${ENV.creds} or ./macula-data/client)`
            : missing.length > 0
            ? `${c.creds} (missing ${missing.join(", ")})`
            : c.creds,
        ],
        ["description", c.description ?? "-"],
        ["current", c.name === currentName ? "yes" : "no"],
        ["file", store.path],
      ];
      for (const [k, v] of rows) line(`${k.padEnd(12)} ${v}`);
    }));
}

function rmCommand() {
  return new Command("rm")
    .alias("remove")
    .description("delete a saved context (if it was current, none is current afterwards)")
    .argument("<name>", "context name", nameArg)
    .addHelpText(
      "after",
      `
Only the saved entry goes; the credentials directory is left alone.

Example:
  $ macula context rm old-lab`,
    )
    .action(guarded("macula context rm", (name: string) => {
      const store = ContextStore.open();
      const r = store.remove(name);
      line(
        `removed context ${r.context.name}${
          r.wasCurrent ? " (it was current; no context is current now)" : ""
        }`,
      );
    }));
}

/** Builds the `context` command group. */
export function contextCommand() {
  const context = new Command("context")
    .description("manage saved connection contexts (node address + credentials)")
    .addCommand(addCommand())
    .addCommand(useCommand())
    .addCommand(lsCommand())
    .addCommand(showCommand())
    .addCommand(rmCommand())
    .addHelpText(
      "after",
      `
A context names a node address (quic://host:port) and a credentials directory (ca.pem,
cert.pem, key.pem). Client commands pick their target in this order (a flag beats the
environment, the environment beats the current context):
  server: --server, --context <name>, ${ENV.url}, the current context, quic://127.0.0.1:4433
  creds:  --creds, --context's creds, ${ENV.creds}, the current context's, ./macula-data/client

Examples:
  $ macula context add acme --server quic://edge-1.acme.example --creds ~/acme --use
  $ macula context ls                       the current context is marked *
  $ macula context use local
  $ macula context show acme --json
  $ macula context rm acme

Contexts live in contexts.json under ${ENV.configDir}, else $XDG_CONFIG_HOME/macula, else
~/.config/macula.
${EXIT_CODES}
Guide: macula docs contexts`,
    );
  for (const c of context.commands) c.addHelpText("after", `\n${EXIT_CODES}`);
  return context;
}

const EXIT_CODES =
  `Exit codes: 0 success, 1 failed (unknown context, exists without --force, unreadable file),
2 usage error (bad name, bad --server, missing argument).`;
