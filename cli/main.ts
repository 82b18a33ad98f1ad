#!/usr/bin/env bun
/**
 * `macula` — the command-line entry point.
 *
 * Builds the command tree and maps every outcome to an exit code:
 * 0 success (including `--help` and `--version`), 1 a command failed at run time,
 * 2 a usage error (unknown command or option, missing argument).
 *
 * Each command lives in `cli/commands/` and is a thin shell over `lib/`.
 */
import { Command, CommanderError, type CommandUnknownOpts } from "@commander-js/extra-typings";
import process from "node:process";
import { fileProblem } from "../lib/identity/mod.ts";
import { benchCommand } from "./commands/bench.ts";
import { certsCommand } from "./commands/certs.ts";
import { configCommand } from "./commands/config.ts";
import { contextCommand } from "./commands/context.ts";
import { simCommand } from "./commands/sim.ts";
import { stunCommand } from "./commands/stun.ts";
import { inspectCommand } from "./commands/inspect.ts";
import { pingCommand } from "./commands/ping.ts";
import { demoCommand } from "./commands/demo.ts";
import { docsCommand } from "./commands/docs.ts";
import { messagingCommands } from "./commands/messaging.ts";
import { netcheckCommand } from "./commands/netcheck.ts";
import { nodeCommand } from "./commands/node.ts";
import { relayCommand } from "./commands/relay.ts";
import { statusCommand } from "./commands/status.ts";
import { VERSION, versionCommand } from "./commands/version.ts";

/** Exit code for usage errors. */
export const USAGE_EXIT_CODE = 2;
/** Exit code for commands that failed while running. */
export const FAILURE_EXIT_CODE = 1;

const INTRO = [
  "Macula is a mesh network over QUIC. Nodes find each other (SWIM membership), keep routes to",
  "a few neighbours, punch through NATs or fall back to relays, and route pub/sub messages and",
  "RPC calls across the whole mesh. Every realm is isolated, and every hop is authenticated by",
  "mutual TLS with certificates issued by the realm's certificate authority.",
].join(" ");

const EXAMPLES = `
Examples:
  $ macula demo                                  three local nodes: pub/sub and RPC across them
  $ macula certs ca init --realm acme            create a realm certificate authority
  $ macula node up                               start a node on embedded defaults
  $ macula sub 'sensors.>'                       print every message under sensors.
  $ macula pub sensors.kitchen.temp 21.5         publish one message
  $ macula call math.add '{"a":1,"b":2}'         call a procedure, print the reply
  $ macula netcheck                              which NAT is this host behind?

Run 'macula <command> --help' (or 'macula help <command>') for a command's arguments,
options, examples and exit codes.
Exit codes: 0 success, 1 the command failed, 2 usage error, 130 interrupted (Ctrl-C);
pub, sub, call and serve add their own (see their --help).`;

/** Builds the full `macula` command tree (without parsing anything). */
export function buildProgram(): CommandUnknownOpts {
  const program = new Command("macula")
    .description(INTRO)
    .version(VERSION, "-V, --version", "print the version")
    .addHelpText("after", EXAMPLES);

  program.addCommand(demoCommand().helpGroup("Getting started:"));
  program.addCommand(nodeCommand().helpGroup("Node:"));
  program.addCommand(configCommand().helpGroup("Node:"));
  for (const command of messagingCommands()) program.addCommand(command);
  program.addCommand(certsCommand().helpGroup("Security:"));
  program.addCommand(netcheckCommand().helpGroup("Network:"));
  program.addCommand(stunCommand().helpGroup("Network:"));
  program.addCommand(relayCommand().helpGroup("Network:"));
  program.addCommand(contextCommand().helpGroup("Tools:"));
  program.addCommand(simCommand().helpGroup("Tools:"));
  program.addCommand(benchCommand().helpGroup("Tools:"));
  program.addCommand(docsCommand().helpGroup("Tools:"));
  program.addCommand(inspectCommand().helpGroup("Node:"));
  program.addCommand(statusCommand().helpGroup("Node:"));
  program.addCommand(pingCommand().helpGroup("Network:"));
  program.addCommand(versionCommand(), { hidden: true });
  program.commandsGroup("Tools:").helpCommand("help [command]", "show help for a command");

  configureTree(program, "macula");
  return program;
}

/**
 * Applies the error handling every command needs. Commands added with `addCommand` do not
 * inherit settings from their parent, so this walks the whole tree.
 */
function configureTree(command: CommandUnknownOpts, path: string): void {
  command
    .helpOption("-h, --help", "show help for a command")
    .exitOverride()
    .showHelpAfterError(`(run '${path} --help' for usage)`)
    .configureOutput({
      outputError: (message, write) => write(`${path}: ${plainUsageError(message)}`),
    });
  for (const sub of command.commands) configureTree(sub, `${path} ${sub.name()}`);
}

/**
 * Commander's usage errors in the CLI's one error style, `<command path>: <what was wrong>`:
 * without its "error: " word, and naming a bad value once (the argument parsers' messages
 * already say what was expected).
 */
export function plainUsageError(message: string): string {
  const end = message.endsWith("\n") ? "\n" : "";
  return plainText(message.replace(/^error: /, "").replace(/\n$/, "")) + end;
}

function plainText(text: string): string {
  const flag = (flags: string) => /--[\w-]+/.exec(flags)?.[0] ?? flags;
  const option = /^option '([^']*)' argument '(.*)' is invalid\. (.*)$/s.exec(text);
  if (option) {
    const [, flags, value, why] = option as unknown as [string, string, string, string];
    const name = flag(flags);
    if (why.includes(name)) return why; // the parser's message names both already
    const choices = /^Allowed choices are (.*)\.$/.exec(why);
    if (choices) return `${name} '${value}': give one of ${choices[1]}`;
    return why.includes(value) ? `${name}: ${why}` : `${name} '${value}': ${why}`;
  }
  const arg = /^command-argument value '(.*)' is invalid for argument '(.*)'\. (.*)$/s.exec(text);
  if (arg) return arg[3]!.includes(arg[1]!) ? arg[3]! : `${arg[2]} '${arg[1]}': ${arg[3]}`;
  const conflict = /^option '([^']*)' cannot be used with option '([^']*)'$/.exec(text);
  if (conflict) return `${flag(conflict[1]!)} and ${flag(conflict[2]!)} cannot be used together`;
  const required = /^required option '([^']*)' not specified$/.exec(text);
  if (required) return `${flag(required[1]!)} is required`;
  const many = /^too many arguments(?: for '.*')?\. Expected (\d+) arguments? but got (\d+)\.$/
    .exec(text);
  if (many) return `too many arguments: it takes ${many[1]}, got ${many[2]}`;
  return text;
}

/** Maps a commander outcome to the process exit code. */
function exitCodeOf(error: CommanderError): number {
  if (error.exitCode === 0) return 0; // --help, --version
  // Commander's own errors (codes "commander.*", exit code 1) are all usage errors. Errors a
  // command raises itself keep their exit code (e.g. 3 for a `macula bench` that lost messages).
  return error.code.startsWith("commander.") ? USAGE_EXIT_CODE : error.exitCode;
}

/**
 * Runs `macula` with `argv` in Node's layout (`[runtime, script, ...args]`) and returns the exit
 * code. Never calls `process.exit`.
 */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  let args = argv.slice(2);
  // `macula help node up` is `macula node up --help` (commander's help command takes one name);
  // a name that is not a command there is said as such.
  if (args[0] === "help" && args.length > 1) {
    let at: CommandUnknownOpts = program;
    let path = "macula";
    for (const name of args.slice(1)) {
      const next = at.commands.find((c) => c.name() === name || c.aliases().includes(name));
      if (!next) {
        process.stderr.write(
          `${path}: unknown command '${name}'\n(run '${path} --help' for usage)\n`,
        );
        return USAGE_EXIT_CODE;
      }
      at = next;
      path = `${path} ${name}`;
    }
    args = [...args.slice(1), "--help"];
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`macula: ${message}\n`);
    return FAILURE_EXIT_CODE;
  }
}

if (import.meta.main) {
  // A closed pipe (`macula sub '>' | head -1`) ends the command quietly with status 0: the
  // command sees it at its next write (shared.ts `out`) and cleans up; this bounds that to 1 s.
  // Any other write error (a full disk) is said once, and ends the command at once: nothing
  // more can be shown.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") {
      setTimeout(() => process.exit(0), 1000).unref();
      return;
    }
    process.stderr.write(`macula: cannot write to stdout: ${fileProblem(e)}\n`);
    process.exit(FAILURE_EXIT_CODE);
  });
  process.exitCode = await run(process.argv);
}
