/**
 * `macula ping <node-id>` — asks the node this client is attached to to reach another node by id
 * and ping it: each attempt prints the path (direct, punched, relayed), the round trip, and the
 * rendezvous or relay used.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import process from "node:process";
import { isNodeIdText } from "../../lib/identity/mod.ts";
import { SessionError } from "../../lib/peer/mod.ts";
import {
  CliFailure,
  connectTo,
  guarded,
  intArg,
  target,
  TARGET_HELP,
  withTarget,
} from "./shared.ts";

function nodeIdArg(v: string): string {
  if (!isNodeIdText(v)) {
    throw new InvalidArgumentError(
      "give a node id: 52 characters of a-z and 2-7 (see 'macula inspect members')",
    );
  }
  return v;
}

/** Builds `macula ping`. */
export function pingCommand() {
  return withTarget(
    new Command("ping")
      .description("reach a node by id and ping it: path (direct, punched, relayed) and RTT")
      .argument("<node-id>", "the node to reach", nodeIdArg)
      .option("-n, --count <n>", "attempts", intArg(1, 1000), 3)
      .option("-t, --timeout <ms>", "deadline of each attempt", intArg(1, 600_000), 30_000)
      .option("--interval <ms>", "time between attempts", intArg(0, 60_000), 1000)
      .option(
        "--until-direct",
        "keep trying (up to --count) until the path is not relayed; each try of a relayed peer also tries to move it to a direct path",
      )
      .option("--relay", "go through a relay even when a direct path exists (to test it)")
      .option("--json", "one JSON object per attempt"),
  )
    .addHelpText(
      "after",
      `${TARGET_HELP}

The node tries, in order: an open session; a direct dial to the address membership knows; hole
punching through a rendezvous node both have a session with; a relayed session through that node
(a QUIC connection between the two nodes whose packets the relay forwards). A relayed session
keeps trying to move to a direct path on its own (relay.upgrade_after_ms, then doubling).

Examples:
  $ macula ping 4kmaetqwl2tzhekhw4shb6euftzfwrw4sx32ketzmm7aybrjh6qq
  $ macula ping <node-id> --until-direct --count 10
  $ macula ping <node-id> --json | jq .path

Exit codes: 0 every attempt reached the node (with --until-direct: a direct or punched path was
found), 1 it could not be reached (or stayed relayed), 2 usage.`,
    )
    .action(guarded("macula ping", async (id, o) => {
      const client = await connectTo("macula ping", target(o), o);
      let ok = true;
      try {
        for (let i = 1; i <= o.count; i++) {
          try {
            const r = await client.ping(id, {
              relayOnly: o.relay === true,
              upgrade: o.untilDirect === true,
              timeoutMs: o.timeout,
            });
            if (o.json) process.stdout.write(`${JSON.stringify({ attempt: i, ...r })}\n`);
            else {
              const via = r.via ? ` via ${r.via.slice(0, 12)}…` : "";
              process.stdout.write(
                `ping ${id.slice(0, 12)}…: attempt ${i}: ${r.path}${via}, rtt ${
                  r.rttMs.toFixed(2)
                } ms${r.tried.length ? ` (tried: ${r.tried.join("; ")})` : ""}\n`,
              );
            }
            if (o.untilDirect && r.path !== "relayed") return;
          } catch (e) {
            if (e instanceof SessionError && e.remoteCode === "not_found") {
              throw new CliFailure(
                `${id} is not a member the node knows\n` +
                  `  ('macula inspect members' lists the members it knows)`,
              );
            }
            ok = false;
            const message = (e as Error).message.replace(/^remote: /, "");
            if (o.json) process.stdout.write(`${JSON.stringify({ attempt: i, error: message })}\n`);
            else process.stdout.write(`ping ${id.slice(0, 12)}…: attempt ${i}: ${message}\n`);
          }
          if (i < o.count && o.interval > 0) {
            await new Promise((r) => setTimeout(r, o.interval));
          }
        }
        if (o.untilDirect) throw new Error(`no direct path to ${id} after ${o.count} attempts`);
        if (!ok) throw new Error(`${id} could not be reached`);
      } finally {
        await client.close();
      }
    }));
}
