/**
 * `macula sim` — deterministic simulations of the mesh's protocol cores (lib/sim). Every run is
 * reproducible from its seed: the output names it and the command that reruns it.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import process from "node:process";
import { type MembershipReport, runMembershipSim } from "../../lib/sim/mod.ts";
import { guarded, intArg } from "./shared.ts";

function lossArg(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0 || n >= 1) {
    throw new InvalidArgumentError("give a loss probability from 0 to below 1, e.g. 0.01");
  }
  return n;
}

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
report, bit for bit. Guide: docs/membership.md, docs/simulator.md.

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
  return sim;
}
