/**
 * `macula inspect` — what a running node sees, as text or JSON for scripts (`--json | jq`).
 */
import { Command } from "@commander-js/extra-typings";
import process from "node:process";
import {
  connectTo,
  guarded,
  target,
  TARGET_HELP,
  type TargetOptions,
  withTarget,
} from "./shared.ts";

interface MemberRow {
  id: string;
  addr: string;
  state: string;
  inc: number;
  sinceMs: number;
  lastSeenMs: number | null;
  self: boolean;
  meta: { tags: string[]; version: string };
}

function ago(ms: number): string {
  return ms < 1000
    ? `${ms} ms`
    : ms < 120_000
    ? `${(ms / 1000).toFixed(1)} s`
    : `${Math.round(ms / 60_000)} min`;
}

async function fetch(what: "members" | "node", o: TargetOptions): Promise<unknown> {
  const client = await connectTo(`macula inspect ${what}`, target(o), o);
  try {
    return await client.inspect(what);
  } finally {
    await client.close();
  }
}

/** Builds `macula inspect`. */
export function inspectCommand(): Command {
  const inspect = new Command("inspect").description(
    "show what a running node sees (text or --json)",
  ).addHelpText(
    "after",
    `
For operators: the client certificate needs the operator group (the dev realm's client
credentials have it), or the node answers permission_denied (docs/security.md).`,
  );
  inspect.addCommand(
    withTarget(
      new Command("members")
        .description(
          "the realm's members the node knows: state, incarnation, last change, last heard",
        )
        .option("--json", "print one JSON array (for jq)"),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

States: alive, suspect (failed a probe; refuted or declared dead soon), dead, left. The
incarnation is raised only by the member itself, to refute a suspicion or after a restart.

Examples:
  $ macula inspect members
  $ macula inspect members --json | jq -r '.[] | select(.state != "alive") | .addr'`,
      )
      .action(guarded("macula inspect members", async (o) => {
        const rows = (await fetch("members", o)) as MemberRow[];
        if (o.json) {
          process.stdout.write(`${JSON.stringify(rows)}\n`);
          return;
        }
        rows.sort((a, b) => a.addr.localeCompare(b.addr));
        const lines = rows.map((r) =>
          `${r.id.slice(0, 16)}…  ${r.addr.padEnd(28)} ${r.state.padEnd(8)} inc ${
            String(r.inc).padEnd(4)
          } ` +
          `since ${ago(r.sinceMs).padStart(8)}  ` +
          `heard ${
            r.self
              ? "-".padStart(8)
              : r.lastSeenMs === null
              ? "never".padStart(8)
              : `${ago(r.lastSeenMs)} ago`
          }` +
          `${r.meta.tags.length ? `  [${r.meta.tags.join(",")}]` : ""}${
            r.self ? "  (this node)" : ""
          }`
        );
        process.stdout.write(`${lines.join("\n")}\n${rows.length} members\n`);
      })),
  );
  inspect.addCommand(
    withTarget(
      new Command("node")
        .description("the node's snapshot: id, url, routes, clients, members, router counters")
        .option("--json", "print one JSON object (for jq)"),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

Examples:
  $ macula inspect node
  $ macula inspect node --json | jq .router.published`,
      )
      .action(guarded("macula inspect node", async (o) => {
        const snap = await fetch("node", o);
        process.stdout.write(`${JSON.stringify(snap, null, o.json ? undefined : 2)}\n`);
      })),
  );
  return inspect;
}
