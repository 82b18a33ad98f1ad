/**
 * `macula sim` — deterministic simulations of the mesh's protocol cores (lib/sim). Every run is
 * reproducible from its seed: the output names it and the command that reruns it.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import process from "node:process";
import {
  type DhtReport,
  type MembershipReport,
  type RoutingReport,
  runDhtSim,
  runMembershipSim,
  runRoutingSim,
} from "../../lib/sim/mod.ts";
import { SHORTCUTS } from "../../lib/messaging/mod.ts";
import { guarded, intArg } from "./shared.ts";

/** A fraction from 0 to below 1 (`what` names it in the error). */
function fractionArg(what: string, example: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0 || n >= 1) {
      throw new InvalidArgumentError(`give ${what} from 0 to below 1, e.g. ${example}`);
    }
    return n;
  };
}
const lossArg = fractionArg("a loss probability", "0.01");

/** `a,b` as two whole numbers of milliseconds. */
function pairArg(what: string) {
  return (v: string): [number, number] => {
    const m = /^(\d+),(\d+)$/.exec(v.trim());
    if (!m) {
      throw new InvalidArgumentError(`give ${what} as two whole numbers of ms, e.g. 10000,2000`);
    }
    return [Number(m[1]), Number(m[2])];
  };
}

const ms = (v: number | null) => (v === null ? "did not happen" : `${(v / 1000).toFixed(2)} s`);

function text(r: MembershipReport, rerun: string): string {
  return [
    `membership: ${r.nodes} nodes, loss ${(r.loss * 100).toFixed(1)}%, seed ${r.seed}`,
    `  rerun:                ${rerun}`,
    `  join known to all:    ${ms(r.joinKnownMs)}`,
    `  crash detected:       ${ms(r.crashDetectedMs)}`,
    `  crash known to all:   ${ms(r.crashKnownMs)}`,
    ...(r.restartKnownMs !== null ? [`  restart known to all: ${ms(r.restartKnownMs)}`] : []),
    ...(r.healedMs !== null || r.partitionDeaths > 0
      ? [
        `  partition healed in:  ${ms(r.healedMs)}`,
        `  deaths across it:     ${r.partitionDeaths}`,
      ]
      : []),
    `  false positives:      ${r.falsePositives} (live members declared dead)`,
    `  false suspicions:     ${r.falseSuspicions} (refuted)`,
    `  traffic per node:     ${r.messagesPerNodePerSec} msg/s, ${r.bytesPerNodePerSec} B/s`,
    `  views at the end:     ${r.viewAlive.min}–${r.viewAlive.max} members alive`,
    ...(r.overlay
      ? [
        `  overlay (k=${r.overlay.k}):        ${r.overlay.components} component(s), diameter ` +
        `${r.overlay.diameter}${r.overlay.diameterExact ? "" : " (sampled, a lower bound)"}, ` +
        `mean distance ${r.overlay.meanDistance}, degree ${r.overlay.degree.min}/` +
        `${r.overlay.degree.mean}/${r.overlay.degree.max} (min/mean/max)`,
      ]
      : []),
    `  simulated ${(r.simulatedMs / 1000).toFixed(0)} s in ${(r.wallMs / 1000).toFixed(1)} s ` +
    `(${r.events} events)`,
  ].join("\n");
}

const pct = (x: number) => `${(x * 100).toFixed(x === 1 ? 0 : 2)}%`;
const spread = (s: { p50: number; p99: number; max: number }, unit = "", digits = 0) =>
  `${s.p50.toFixed(digits)}${unit} / ${s.p99.toFixed(digits)}${unit} / ${
    s.max.toFixed(digits)
  }${unit}`;

function routingText(r: RoutingReport, rerun: string): string {
  const d = r.delivery;
  return [
    `routing: ${r.nodes} nodes, overlay k=${r.k} (mean path ${r.meanPathHops.toFixed(2)} hops), ` +
    `${r.subscribers} subscribing nodes, seed ${r.seed}`,
    `  rerun:                   ${rerun}`,
    `  interest converged in:   ${r.convergeMs.toFixed(0)} ms (every record at every node)`,
    `  new subscription seen:   ${spread(r.visibilityMs, " ms", 1)} (p50 / p99 / max over nodes)`,
    `  delivery:                ${d.delivered} of ${d.expected} (${pct(d.completeness)}), ` +
    `${d.duplicates} duplicates, ${d.publishes} publishes`,
    `  transmissions/delivery:  ${d.transmissionsPerDelivery.toFixed(2)} FWDs ` +
    `(${pct(d.forwarderShare)} of nodes forwarded for others)`,
    `  streams (shortcuts):     ${r.streams.delivered} of ${r.streams.expected} delivered, ` +
    `${r.streams.duplicates} duplicates, ${r.streams.outOfOrder} out of order; ` +
    `${r.streams.publishers} publishers × ${r.streams.length} messages`,
    `                           ${
      r.streams.transmissionsPerDelivery.toFixed(2)
    } FWDs per delivery ` +
    `(${r.streams.steadyTransmissionsPerDelivery.toFixed(2)} once warm), ` +
    `${r.streams.shortcuts} shortcuts dialed, at most ${r.streams.maxShortcutsPerNode} at one node`,
    `  queue group:             ${r.queue.delivered} of ${r.queue.publishes} delivered once, ` +
    `${r.queue.duplicates} duplicates`,
    `  calls to a far provider: ${r.rpc.ok} of ${r.rpc.calls} answered, ${r.rpc.failed} failed`,
    ...(r.churn
      ? [
        `  after ${r.churn.crashed} nodes crashed: ${pct(r.churn.completeAfterDetect)} of probes ` +
        `complete once detected; whole again ${
          r.churn.recoveredMs === null ? "never" : `${r.churn.recoveredMs} ms after the crash`
        } (dropped: ${r.churn.undeliverable.noRoute} no route, ${r.churn.undeliverable.hopLimit} hop limit)`,
      ]
      : []),
    `  per node (p50/p99/max):  ${spread(r.perNode.origins)} origins held; ` +
    `${spread(r.perNode.interestSent)} INTEREST frames sent`,
    `                           ${spread(r.perNode.messagesSent)} messages, ` +
    `${
      spread({
        p50: r.perNode.bytesSent.p50 / 1024,
        p99: r.perNode.bytesSent.p99 / 1024,
        max: r.perNode.bytesSent.max / 1024,
      }, " KiB")
    } sent`,
    `  protocol errors:         ${r.protocolErrors}`,
    `  simulated ${(r.simulatedMs / 1000).toFixed(1)} s in ${(r.wallMs / 1000).toFixed(1)} s`,
  ].join("\n");
}

function dhtText(r: DhtReport, rerun: string): string {
  const phase = (name: string, p: DhtReport["steady"]) => [
    `  ${name}:`,
    `    lookups:               ${p.found} of ${p.lookups} found their target (${
      pct(p.success)
    }); ` +
    `rounds ${spread(p.rounds)} (p50 / p99 / max)`,
    `    requests per lookup:   ${p.messagesPerLookup.p50} (p50), ${
      p.messagesPerLookup.mean.toFixed(1)
    } (mean)`,
    `    records read back:     ${p.got} of ${p.gets} (${pct(p.getSuccess)})`,
  ];
  return [
    `dht: ${r.nodes} nodes (${r.clientNodes} in client mode), k=${r.k}, alpha=${r.alpha}, seed ${r.seed}`,
    `  rerun:                   ${rerun}`,
    `  joined in:               ${(r.joinMs / 1000).toFixed(1)} s (one node every 2 ms)`,
    ...phase("steady", r.steady),
    ...(r.churn ? phase(`right after ${r.churn.crashed} nodes crashed at once`, r.churn) : []),
    `  per node (p50/p99/max):  ${spread(r.perNode.tableSize)} contacts; ` +
    `${spread(r.perNode.recordsStored)} records stored`,
    `                           ${spread(r.perNode.messagesSent)} messages, ${
      spread({
        p50: r.perNode.bytesSent.p50 / 1024,
        p99: r.perNode.bytesSent.p99 / 1024,
        max: r.perNode.bytesSent.max / 1024,
      }, " KiB")
    } sent`,
    `  client-mode nodes in server tables: ${r.clientsInTables}`,
    `  simulated ${(r.simulatedMs / 1000).toFixed(1)} s in ${(r.wallMs / 1000).toFixed(1)} s`,
  ].join("\n");
}

/** Builds `macula sim`. */
export function simCommand(): Command {
  const sim = new Command("sim").description(
    "run deterministic mesh simulations (virtual clock, seeded network), reproducible from a seed",
  );
  sim.addCommand(
    new Command("membership")
      .description("SWIM + Lifeguard membership: joins, crashes, pauses, partitions at scale")
      .option("-n, --nodes <n>", "cluster size", intArg(2, 100_000), 1000)
      .option("--loss <p>", "message loss probability", lossArg, 0.01)
      .option("--seed <s>", "the run's seed", intArg(0, 2 ** 31 - 1), 1)
      .option("--cold", "grow the cluster by joining through one seed (default: formed)")
      .option(
        "--pause <every,for>",
        "pause one node for `for` ms every `every` ms",
        pairArg("--pause"),
      )
      .option(
        "--partition <at,for>",
        "split the cluster in two at `at` ms for `for` ms",
        pairArg("--partition"),
      )
      .option(
        "--restart-after <ms>",
        "restart the crashed node after this long",
        intArg(1, 86_400_000),
      )
      .option(
        "--duration <ms>",
        "simulated time (default: the crash + 30 s)",
        intArg(1000, 86_400_000),
      )
      .option("--json", "print the report as one JSON object")
      .addHelpText(
        "after",
        `
The cluster forms (or, with --cold, grows through node 0), a new node joins at 5 s, a random
node crashes at 10 s; the report says when every live node knew of each, how many live nodes
were declared dead (false positives), and the traffic per node. The same seed gives the same
report, bit for bit. Guide: macula docs membership, macula docs simulator.

Examples:
  $ macula sim membership --nodes 1000 --loss 0.01
  $ macula sim membership --nodes 1000 --loss 0.05 --pause 10000,2000 --duration 600000
  $ macula sim membership --nodes 100 --partition 12000,20000 --duration 90000 --json | jq .healedMs
  $ macula sim membership --nodes 10000 --seed 7`,
      )
      .action(guarded("macula sim membership", (o) => {
        const args = [
          `--nodes ${o.nodes}`,
          `--loss ${o.loss}`,
          `--seed ${o.seed}`,
          ...(o.cold ? ["--cold"] : []),
          ...(o.pause ? [`--pause ${o.pause.join(",")}`] : []),
          ...(o.partition ? [`--partition ${o.partition.join(",")}`] : []),
          ...(o.restartAfter ? [`--restart-after ${o.restartAfter}`] : []),
          ...(o.duration ? [`--duration ${o.duration}`] : []),
        ];
        const rerun = `macula sim membership ${args.join(" ")}`;
        let r: MembershipReport;
        try {
          r = runMembershipSim({
            nodes: o.nodes,
            seed: o.seed,
            loss: o.loss,
            warm: !o.cold,
            ...(o.cold
              ? {
                joinAtMs: Math.max(5000, o.nodes * 20),
                crashAtMs: Math.max(10_000, o.nodes * 20 + 5000),
              }
              : {}),
            ...(o.pause ? { pause: { everyMs: o.pause[0], forMs: o.pause[1] } } : {}),
            ...(o.partition ? { partition: { atMs: o.partition[0], forMs: o.partition[1] } } : {}),
            ...(o.restartAfter ? { restartAfterMs: o.restartAfter } : {}),
            ...(o.duration ? { durationMs: o.duration } : {}),
          });
        } catch (e) {
          throw new Error(`the simulation failed (reproduce: ${rerun}): ${(e as Error).message}`);
        }
        process.stdout.write(
          o.json ? `${JSON.stringify({ ...r, rerun })}\n` : `${text(r, rerun)}\n`,
        );
      })),
  );
  sim.addCommand(
    new Command("routing")
      .description(
        "mesh-wide pub/sub and RPC over the overlay: delivery, duplicates, cost, visibility, churn",
      )
      .option("-n, --nodes <n>", "mesh size", intArg(2, 100_000), 1000)
      .option(
        "--subscribers <m>",
        "nodes with a subscribing client (default: min(nodes, 100))",
        intArg(1, 100_000),
      )
      .option("--k <k>", "overlay degree (overlay.k)", intArg(2, 64), 8)
      .option(
        "--shortcuts <n>",
        "shortcuts a node may hold (overlay.shortcuts; 0: none)",
        intArg(0, 1024),
        SHORTCUTS.max,
      )
      .option(
        "--churn <p>",
        "fraction of nodes crashed at once after the steady phase",
        fractionArg("a fraction of nodes", "0.1"),
        0.1,
      )
      .option("--seed <s>", "the run's seed", intArg(0, 2 ** 31 - 1), 1)
      .option("--json", "print the report as one JSON object")
      .addHelpText(
        "after",
        `
Real routers (the code nodes run) on the simulator, one per node, joined by the k-regular
overlay's routes, each with a latency of 0.5–5 ms. Subscribing nodes subscribe to sim.> (every
third also in queue group g), one node serves sim.p. Then: how long until every node knows every
record, how fast a new subscription is seen, 50 publishes and 25 queue-group publishes from
random nodes (each subscription should get each once), 50 calls from random nodes, streams from
10 random nodes (20 messages 10 ms apart each: shortcuts to far subscribers' nodes from the
third message on; the second halves measured alone), and a crash
of --churn of the nodes at once (neighbours notice after 1.5 s, the overlay repairs itself,
probe publishes every 100 ms say when delivery is whole again). The same seed gives the same
report. Guide: macula docs routing.

Examples:
  $ macula sim routing --nodes 1000
  $ macula sim routing --nodes 10000 --subscribers 100 --json | jq .delivery
  $ macula sim routing --nodes 300 --k 4 --churn 0.2 --seed 7`,
      )
      .action(guarded("macula sim routing", (o) => {
        const subscribers = Math.min(o.nodes, o.subscribers ?? 100);
        const rerun = `macula sim routing --nodes ${o.nodes} --subscribers ${subscribers} ` +
          `--k ${o.k} --shortcuts ${o.shortcuts} --churn ${o.churn} --seed ${o.seed}`;
        let r: RoutingReport;
        try {
          r = runRoutingSim({
            nodes: o.nodes,
            subscribers,
            k: o.k,
            shortcuts: o.shortcuts,
            churn: o.churn,
            seed: o.seed,
          });
        } catch (e) {
          throw new Error(`the simulation failed (reproduce: ${rerun}): ${(e as Error).message}`);
        }
        process.stdout.write(
          o.json ? `${JSON.stringify({ ...r, rerun })}\n` : `${routingText(r, rerun)}\n`,
        );
      })),
  );
  sim.addCommand(
    new Command("dht")
      .description("the Kademlia DHT: lookup rounds, success, cost, table sizes, under churn")
      .option("-n, --nodes <n>", "mesh size", intArg(2, 100_000), 1000)
      .option(
        "--churn <p>",
        "fraction of nodes crashed at once after the steady phase",
        fractionArg("a fraction of nodes", "0.1"),
        0.1,
      )
      .option("--seed <s>", "the run's seed", intArg(0, 2 ** 31 - 1), 1)
      .option("--json", "print the report as one JSON object")
      .addHelpText(
        "after",
        `
The real DHT core (lib/mesh/dht) of every node on the simulator, 1–5 ms a message. Nodes join
one every 2 ms through up to three earlier ones (10% in client mode, as nodes reachable only
through a relay). Then 200 lookups of random nodes and 100 records put and read back, from random
nodes; then --churn of the nodes crash at once and the same runs again right away. Reports lookup
rounds (the longest chain of queries), success, requests per lookup, and per-node table size,
records and traffic. The same seed gives the same report. Guide: macula docs dht.

Examples:
  $ macula sim dht --nodes 1000
  $ macula sim dht --nodes 10000 --json | jq .churn.success
  $ macula sim dht --nodes 2000 --churn 0.3 --seed 7`,
      )
      .action(guarded("macula sim dht", (o) => {
        const rerun = `macula sim dht --nodes ${o.nodes} --churn ${o.churn} --seed ${o.seed}`;
        let r: DhtReport;
        try {
          r = runDhtSim({ nodes: o.nodes, churn: o.churn, seed: o.seed });
        } catch (e) {
          throw new Error(`the simulation failed (reproduce: ${rerun}): ${(e as Error).message}`);
        }
        process.stdout.write(
          o.json ? `${JSON.stringify({ ...r, rerun })}\n` : `${dhtText(r, rerun)}\n`,
        );
      })),
  );
  for (const c of sim.commands) {
    c.addHelpText(
      "after",
      `
Exit codes: 0 report printed, 1 the simulation failed (the error gives the command that
reproduces it), 2 usage error.`,
    );
  }
  return sim;
}
