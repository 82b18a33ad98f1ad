/**
 * `macula ping <node-id>` — asks the node this client is attached to to reach another node by id
 * (or a unique prefix of it) and ping it: each attempt prints the path (direct, punched,
 * relayed), the round trip, and the rendezvous or relay used; a summary (attempts, reached,
 * loss, paths, min/avg/max round trip) ends the run, Ctrl-C included, as ping(8) does.
 */
import { Command } from "@commander-js/extra-typings";
import { SessionError } from "../../lib/peer/mod.ts";
import {
  connectTo,
  guarded,
  intArg,
  nodeIdArg,
  notAMember,
  out,
  pause,
  quietExit,
  resolveNodeId,
  signalExitCode,
  target,
  TARGET_HELP,
  untilSignal,
  withTarget,
} from "./shared.ts";

/** What one attempt found. */
interface Reached {
  path: string;
  rttMs: number;
  via?: string;
  tried: string[];
}

/** The summary of a run (`--json`: `{"summary": PingSummary}`, the last line). */
export interface PingSummary {
  /** The node pinged, its whole id. */
  target: string;
  /** Attempts that ended (one cut short by Ctrl-C is not counted). */
  attempts: number;
  reached: number;
  /** Percent of the attempts that did not reach it, rounded to a whole number. */
  lossPercent: number;
  /** How many attempts took each path (`direct`, `punched`, `relayed`). */
  paths: Record<string, number>;
  /** Round trips of the attempts that reached it, in ms; null when none did. */
  rttMs: { min: number; avg: number; max: number } | null;
  /** The run was stopped by a signal (Ctrl-C) before its last attempt. */
  interrupted: boolean;
}

/** The summary of `results` (a reply, or an error message, per attempt). */
export function pingSummary(
  target: string,
  results: readonly (Reached | string)[],
  interrupted: boolean,
): PingSummary {
  const ok = results.filter((r): r is Reached => typeof r !== "string");
  const paths: Record<string, number> = {};
  for (const r of ok) paths[r.path] = (paths[r.path] ?? 0) + 1;
  const rtts = ok.map((r) => r.rttMs);
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    target,
    attempts: results.length,
    reached: ok.length,
    lossPercent: results.length === 0
      ? 0
      : Math.round((100 * (results.length - ok.length)) / results.length),
    paths,
    rttMs: rtts.length === 0 ? null : {
      min: round(Math.min(...rtts)),
      avg: round(rtts.reduce((a, b) => a + b, 0) / rtts.length),
      max: round(Math.max(...rtts)),
    },
    interrupted,
  };
}

/** The summary as ping(8) prints it: a header, the counts and paths, the round trips. */
export function summaryText(s: PingSummary): string {
  const paths = Object.entries(s.paths).map(([p, n]) => `${n} ${p}`).join(", ");
  const lines = [
    `--- ${s.target} ping statistics ---`,
    `${s.attempts} attempt${s.attempts === 1 ? "" : "s"}, ${s.reached} reached, ` +
    `${s.lossPercent}% loss${paths ? `, paths: ${paths}` : ""}`,
  ];
  if (s.rttMs) {
    const f = (n: number) => n.toFixed(2);
    lines.push(`rtt min/avg/max = ${f(s.rttMs.min)}/${f(s.rttMs.avg)}/${f(s.rttMs.max)} ms`);
  }
  return `${lines.join("\n")}\n`;
}

/** Builds `macula ping`. */
export function pingCommand() {
  return withTarget(
    new Command("ping")
      .description("reach a node by id and ping it: path (direct, punched, relayed) and RTT")
      .argument("<node-id>", "the node to reach: its id, or a unique prefix of it", nodeIdArg)
      .option("-n, --count <n>", "attempts", intArg(1, 1000), 3)
      .option("-t, --timeout <ms>", "deadline of each attempt", intArg(1, 600_000), 30_000)
      .option("--interval <ms>", "time between attempts", intArg(0, 60_000), 1000)
      .option(
        "--until-direct",
        "keep trying (up to --count) until the path is not relayed; each try of a relayed peer also tries to move it to a direct path",
      )
      .option("--relay", "go through a relay even when a direct path exists (to test it)")
      .option("--json", "print one JSON object per attempt, then a summary object"),
  )
    .addHelpText(
      "after",
      `${TARGET_HELP}

The node tries, in order: an open session; a direct dial to the address membership knows; hole
punching through a rendezvous node both have a session with; a relayed session through that node
(a QUIC connection between the two nodes whose packets the relay forwards). A relayed session
keeps trying to move to a direct path on its own (relay.upgrade_after_ms, then doubling).

<node-id> may be a prefix of the id: the node completes it from the members it knows (an
ambiguous prefix is a usage error naming the candidates). The run ends with a summary, as
ping(8)'s: attempts, how many reached the node, loss, the paths taken, and the min/avg/max
round trip; Ctrl-C stops it and prints the summary too. With --json the summary is the last
line: {"summary": {target, attempts, reached, lossPercent, paths, rttMs: {min, avg, max} or
null, interrupted}}.

Examples:
  $ macula ping 4kmaetqwl2tzhekhw4shb6euftzfwrw4sx32ketzmm7aybrjh6qq
  $ macula ping 4kma --until-direct --count 10
  $ macula ping <node-id> --json | jq 'select(.summary) | .summary.rttMs.avg'

Exit codes: 0 every attempt reached the node (with --until-direct: a direct or punched path was
found), 1 it could not be reached (or stayed relayed), 2 usage (an ambiguous prefix too), 130
stopped by Ctrl-C.`,
    )
    .action(guarded("macula ping", async (given, o) => {
      const client = await connectTo("macula ping", target(o), o);
      const signal = untilSignal({ prefix: "macula ping", exitCode: signalExitCode });
      const stop = new AbortController();
      const stopped = new Promise<"stopped">((r) =>
        void signal.done.then(() => {
          stop.abort();
          r("stopped");
        })
      );
      const results: (Reached | string)[] = [];
      let id = given;
      let direct = false;
      try {
        const resolved = await Promise.race([resolveNodeId(client, given), stopped]);
        if (resolved === "stopped") throw quietExit(signalExitCode(signal.received!));
        id = resolved;
        const short = `${id.slice(0, 12)}…`;
        for (let i = 1; i <= o.count && !signal.received; i++) {
          let r: Reached | "stopped";
          try {
            r = await Promise.race([
              client.ping(id, {
                relayOnly: o.relay === true,
                upgrade: o.untilDirect === true,
                timeoutMs: o.timeout,
              }),
              stopped,
            ]);
          } catch (e) {
            if (e instanceof SessionError && e.remoteCode === "not_found") throw notAMember(id);
            if (signal.received) break;
            const message = (e as Error).message.replace(/^remote: /, "");
            results.push(message);
            if (o.json) await out(`${JSON.stringify({ attempt: i, error: message })}\n`);
            else await out(`ping ${short}: attempt ${i}: ${message}\n`);
            if (i < o.count) await pause(o.interval, stop.signal);
            continue;
          }
          if (r === "stopped") break;
          results.push(r);
          if (o.json) await out(`${JSON.stringify({ attempt: i, ...r })}\n`);
          else {
            const via = r.via ? ` via ${r.via.slice(0, 12)}…` : "";
            await out(
              `ping ${short}: attempt ${i}: ${r.path}${via}, rtt ${r.rttMs.toFixed(2)} ms${
                r.tried.length ? ` (tried: ${r.tried.join("; ")})` : ""
              }\n`,
            );
          }
          if (o.untilDirect && r.path !== "relayed") {
            direct = true;
            break;
          }
          if (i < o.count) await pause(o.interval, stop.signal);
        }
      } finally {
        signal.cancel();
        await client.close();
      }
      const summary = pingSummary(id, results, signal.received !== null);
      if (o.json) await out(`${JSON.stringify({ summary })}\n`);
      else await out(`\n${summaryText(summary)}`);
      if (signal.received) throw quietExit(signalExitCode(signal.received));
      if (o.untilDirect && !direct) {
        throw new Error(`no direct path to ${id} after ${results.length} attempts`);
      }
      if (summary.reached < summary.attempts) throw new Error(`${id} could not be reached`);
    }));
}
