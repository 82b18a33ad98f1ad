/**
 * `macula relay ls` — what a node relays for others: its quotas, the relayed sessions it carries
 * (between which nodes, packets, bytes, age, idle) and its counters. Every node relays unless
 * its configuration says `relay: { enabled: false }` (`macula node up --no-relay`).
 */
import { Command } from "@commander-js/extra-typings";
import process from "node:process";
import type { NodeSnapshot } from "../../lib/node/mod.ts";
import { connectTo, guarded, target, TARGET_HELP, withTarget } from "./shared.ts";
import { TIMEOUT } from "./inspect.ts";

const short = (id: string) => `${id.slice(0, 12)}…`;

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The text report of a node's relay role. */
export function relayReport(snap: Pick<NodeSnapshot, "nodeId" | "relay">): string {
  const r = snap.relay;
  if (!r) return `node ${snap.nodeId} does not relay (relay.enabled: false)\n`;
  const l = r.limits;
  const lines = [
    `node ${snap.nodeId} relays: at most ${l.maxSessions} sessions, ${l.sessionsPerPeer} per peer, ${
      size(l.bytesPerSecond)
    }/s per peer (burst ${size(l.burstBytes)})`,
    `${r.sessions.length} relayed session${r.sessions.length === 1 ? "" : "s"}${
      r.sessions.length ? ":" : ""
    }`,
    ...r.sessions.map((s) =>
      `  ${short(s.a)} <-> ${short(s.b)}  ${String(s.packets).padStart(8)} packets  ${
        size(s.bytes).padStart(10)
      }  age ${secs(s.ageMs)}  idle ${secs(s.idleMs)}`
    ),
    `since start: ${r.allocations} sessions, ${r.refused} refused, ${r.packets} packets (${
      size(r.bytes)
    }); dropped: ${r.droppedRate} over rate, ${r.droppedWrongSource} from a wrong address, ${r.droppedGone} peer gone`,
  ];
  return `${lines.join("\n")}\n`;
}

/** Builds `macula relay`. */
export function relayCommand(): Command {
  const relay = new Command("relay").description(
    "what a node relays for peers that cannot reach each other directly",
  );
  relay.addCommand(
    withTarget(
      new Command("ls")
        .description("the node's relay quotas, the relayed sessions it carries, its counters")
        .option("--json", "print one JSON object (for jq): the relay section of inspect node")
        .option(...TIMEOUT),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

A relayed session is a QUIC connection between two nodes (mutual TLS end to end) whose packets
this node forwards; it sees neither the content nor the keys. Every node relays by default, with
quotas per peer (relay: in the node's config; off with 'macula node up --no-relay').

Examples:
  $ macula relay ls
  $ macula relay ls --json | jq '.sessions | length'

Exit codes: 0 printed, 1 cannot connect or the node refused (permission_denied), 2 usage error.`,
      )
      .action(guarded("macula relay ls", async (o) => {
        const client = await connectTo("macula relay ls", target(o), o);
        try {
          const snap = (await client.inspect("node", o.timeout)) as NodeSnapshot;
          process.stdout.write(o.json ? `${JSON.stringify(snap.relay)}\n` : relayReport(snap));
        } finally {
          await client.close();
        }
      })),
  );
  return relay;
}
