/**
 * Command groups that are planned but not built yet.
 *
 * One table drives them all: each entry becomes a command that accepts any arguments and
 * options (so a parse error never hides the real answer), prints
 * `macula <group>: not implemented yet (planned: …)` to stderr and exits with code 2.
 * When a group is built, delete its row here and register its real command in `cli/main.ts`.
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import process from "node:process";

/** Exit code of a group that exists in the command tree but is not built yet. */
export const NOT_IMPLEMENTED_EXIT_CODE = 2;

/** Help heading a command is listed under in `macula --help`. */
export type HelpGroup = "Node:" | "Messaging:" | "Security:" | "Network:" | "Tools:";

/** One planned command group. */
export interface PlannedGroup {
  /** Command name, as typed after `macula`. */
  readonly name: string;
  /** One-line description shown in `macula --help`. */
  readonly summary: string;
  /** What the group will do, shown in its error and help. */
  readonly plan: string;
  /** Help heading. */
  readonly group: HelpGroup;
}

/** Every planned group, in the order `macula --help` lists them. */
export const PLANNED_GROUPS: readonly PlannedGroup[] = [
  {
    name: "bench",
    summary: "benchmark the mesh against a baseline",
    plan: "measure pub/sub, RPC and QUIC throughput and latency against a baseline in the same run",
    group: "Tools:",
  },
];

/** The message a planned group prints. */
export function notImplementedMessage(group: PlannedGroup): string {
  return `macula ${group.name}: not implemented yet (planned: ${group.plan})`;
}

/** Builds the placeholder command for one planned group. */
export function plannedCommand(group: PlannedGroup): Command {
  // No declared arguments: excess arguments and unknown options are accepted and ignored, so
  // whatever is typed reaches the "not implemented yet" answer instead of a parse error.
  return new Command(group.name)
    .description(`${group.summary} (planned)`)
    .helpGroup(group.group)
    .usage("[args...] [options]")
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText("after", `\nNot implemented yet. Planned: ${group.plan}.`)
    .action(() => {
      const message = notImplementedMessage(group);
      process.stderr.write(`${message}\n`);
      throw new CommanderError(NOT_IMPLEMENTED_EXIT_CODE, "macula.notImplemented", message);
    });
}

/** Placeholder commands for every planned group, in table order. */
export function plannedCommands(): Command[] {
  return PLANNED_GROUPS.map(plannedCommand);
}
