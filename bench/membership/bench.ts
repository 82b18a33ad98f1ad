/**
 * `npm run bench -- membership`: the membership simulation at 100, 1,000 and 10,000 nodes (1%
 * loss), the Lifeguard run (1,000 nodes, 5% loss, a node paused 2 s every 10 s, 10 simulated
 * minutes) and a partition that heals, each from a fixed seed, next to the published baselines
 * they are measured against (memberlist's default suspicion timeout, ScaleCube's dissemination
 * time). Asserts correctness (news reached everyone, no false death); never speed.
 *
 * Signed records (docs/membership.md): what a signature costs, against the unsigned baseline in
 * the same run — WebCrypto sign and verify, the edge's whole check of one record (id = SHA-256
 * of the key, then the signature), next to decoding the message that carries it; and on the
 * simulator at 1,000 nodes, signed against unsigned: bytes per node and second, and the records
 * a node checks per second, which with the check's time gives the CPU a node spends on it.
 */
import { nodeIdFromSpki, nodeIdText } from "../../lib/identity/mod.ts";
import { exportSpki, generateKeyPair } from "../../lib/identity/keys.ts";
import {
  decodeMembership,
  membershipCodec,
  recordBytes,
  type WireUpdate,
} from "../../lib/mesh/mod.ts";
import { RecordChecker } from "../../lib/node/membership.ts";
import { type MembershipReport, runMembershipSim } from "../../lib/sim/membership.ts";
import { machineInfo, machineMarkdown } from "../lib/machine.ts";
import type { Bench, BenchOptions, BenchOutcome } from "../lib/types.ts";

const s = (ms: number | null) => (ms === null ? "—" : (ms / 1000).toFixed(2));

/** memberlist's default suspicion timeout: SuspicionMult 4 × log10(N) × ProbeInterval 1 s. */
const memberlistSuspicion = (n: number) => 4 * Math.max(1, Math.log10(n));

function line(name: string, r: MembershipReport): string {
  return `{"bench":"membership","run":${JSON.stringify(name)},"report":${JSON.stringify(r)}}`;
}

/** Microseconds per call of `fn` (awaited one at a time), best of three batches of `n`. */
async function perOp(n: number, fn: (i: number) => unknown): Promise<number> {
  let best = Infinity;
  for (let b = 0; b < 3; b++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn(i);
    best = Math.min(best, ((performance.now() - t0) * 1000) / n);
  }
  return best;
}

interface SignatureCost {
  rows: [string, number][];
  /** The edge's whole check of a record whose key it has seen (µs). */
  checkUs: number;
}

/** What one signed record costs to make and check, next to decoding the message that carries it. */
async function signatureCost(n: number): Promise<SignatureCost> {
  const meta = { realm: "dev", tags: ["relay"], version: "0.1.0" };
  const addr = "quic://192.0.2.10:4433";
  const kp = await generateKeyPair("ed25519");
  const spki = await exportSpki(kp.publicKey);
  const id = nodeIdText(nodeIdFromSpki(spki));
  const ed = { name: "Ed25519" };
  const bytes = recordBytes(0, id, 1, addr, meta) as Uint8Array<ArrayBuffer>;
  const sig = new Uint8Array(await crypto.subtle.sign(ed, kp.privateKey, bytes));
  const pub = await crypto.subtle.importKey("spki", spki, ed, false, ["verify"]);
  const ec = await generateKeyPair("p256");
  const ecAlg = { name: "ECDSA", hash: "SHA-256" };
  const ecSig = await crypto.subtle.sign(ecAlg, ec.privateKey, bytes);
  // A gossip datagram of four such records, and the same record with n incarnations (so each
  // check is news: the checker's in-flight cache never answers for it).
  const wire = {
    kind: 0,
    id,
    inc: 1,
    from: null,
    addr,
    realm: "dev",
    tags: meta.tags,
    version: meta.version,
    key: spki,
    sig,
  };
  const datagram = membershipCodec.encodeBody("gossip", {
    realm: "dev",
    from: id,
    addr,
    updates: [wire, wire, wire, wire],
  });
  const signed: WireUpdate[] = [];
  for (let i = 0; i < n; i++) {
    const b = recordBytes(0, id, i, addr, meta) as Uint8Array<ArrayBuffer>;
    signed.push({
      kind: 0,
      id,
      inc: i,
      from: id,
      record: {
        addr,
        meta,
        proof: { key: spki, sig: new Uint8Array(await crypto.subtle.sign(ed, kp.privateKey, b)) },
      },
    });
  }
  const checker = new RecordChecker(16);
  if (!(await checker.check(signed[0]!))) throw new Error("bench: a good record did not check");
  const checkUs = await perOp(n, (i) => checker.check(signed[i]!));
  const rows: [string, number][] = [
    [
      "decode a gossip datagram of 4 records (the unsigned part of the work)",
      await perOp(n, () => decodeMembership(datagram)),
    ],
    [
      "Ed25519 sign (WebCrypto): once per incarnation of this node",
      await perOp(n, () => crypto.subtle.sign(ed, kp.privateKey, bytes)),
    ],
    [
      "Ed25519 verify (WebCrypto), key imported",
      await perOp(n, () => crypto.subtle.verify(ed, pub, sig, bytes)),
    ],
    [
      "P-256 verify (WebCrypto), key imported",
      await perOp(n, () => crypto.subtle.verify(ecAlg, ec.publicKey, ecSig, bytes)),
    ],
    ["the edge's check of one record: bytes, SHA-256, verify (key seen before)", checkUs],
    [
      "the same, first record of a member: + id check and key import",
      // A new checker per record: no key cache.
      await perOp(Math.min(n, 200), (i) => new RecordChecker(1).check(signed[i]!)),
    ],
  ];
  return { rows, checkUs };
}

export const membershipBench: Bench = {
  summary: "SWIM + Lifeguard on the simulator: 100 / 1,000 / 10,000 nodes, Lifeguard, partition",
  async run(o: BenchOptions): Promise<BenchOutcome> {
    const machine = machineMarkdown(await machineInfo(o.repoRoot));
    const sizes = o.quick ? [100, 1000] : [100, 1000, 10_000];
    const runs: [string, MembershipReport][] = [];
    for (const n of sizes) {
      process.stderr.write(`[bench] membership: ${n} nodes, 1% loss, seed 1\n`);
      runs.push([`${n} nodes`, runMembershipSim({ nodes: n, seed: 1, loss: 0.01 })]);
    }
    const lifeguardN = o.quick ? 200 : 1000;
    process.stderr.write(`[bench] membership: Lifeguard, ${lifeguardN} nodes, 5% loss, 10 min\n`);
    const lifeguard = runMembershipSim({
      nodes: lifeguardN,
      seed: 1,
      loss: 0.05,
      pause: { everyMs: 10_000, forMs: 2000 },
      durationMs: 600_000,
    });
    process.stderr.write(`[bench] membership: signatures, and 1,000 nodes signed vs unsigned\n`);
    const cost = await signatureCost(o.quick ? 300 : 2000);
    const signedRun = runs.find(([, r]) => r.nodes === 1000)?.[1] ??
      runMembershipSim({ nodes: 1000, seed: 1, loss: 0.01 });
    const unsignedRun = runMembershipSim({ nodes: 1000, seed: 1, loss: 0.01, signed: false });
    process.stderr.write(`[bench] membership: partition, 100 nodes\n`);
    const partition = runMembershipSim({
      nodes: 100,
      seed: 1,
      loss: 0.01,
      partition: { atMs: 12_000, forMs: 20_000 },
      durationMs: 90_000,
    });
    for (const [name, r] of runs) console.log(line(name, r));
    console.log(line("unsigned 1000 nodes", unsignedRun));
    console.log(
      `{"bench":"membership","run":"signatures","us":${
        JSON.stringify(Object.fromEntries(cost.rows))
      }}`,
    );
    console.log(line("lifeguard", lifeguard));
    console.log(line("partition", partition));

    const problems: string[] = [];
    for (const [name, r] of [...runs, ["lifeguard", lifeguard] as const]) {
      if (r.joinKnownMs === null) problems.push(`${name}: the join did not reach everyone`);
      if (r.crashKnownMs === null) problems.push(`${name}: the crash did not reach everyone`);
      if (r.falsePositives > 0) problems.push(`${name}: ${r.falsePositives} false positives`);
    }
    if (partition.healedMs === null) problems.push("partition: did not heal");
    for (const p of problems) process.stderr.write(`[bench] membership: FAILED ${p}\n`);

    const rows = runs.map(([, r]) =>
      `| ${r.nodes} | ${s(r.joinKnownMs)} | ${s(r.crashDetectedMs)} | ${s(r.crashKnownMs)} | ` +
      `${memberlistSuspicion(r.nodes).toFixed(1)} | ${r.falsePositives} | ` +
      `${r.messagesPerNodePerSec} | ${r.bytesPerNodePerSec} | ${r.recordsPerNodePerSec} | ` +
      `${
        r.overlay
          ? `${r.overlay.components} / ${r.overlay.diameter}${r.overlay.diameterExact ? "" : "*"}`
          : "—"
      } | ` +
      `${(r.wallMs / 1000).toFixed(1)} |`
    );
    const us = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
    const cpu = (r: MembershipReport) => (r.recordsPerNodePerSec * cost.checkUs) / 1e4; // % of a core
    const sigRows = cost.rows.map(([what, t]) => `| ${what} | ${us(t)} | ${Math.round(1e6 / t)} |`);
    const body =
      `Generated by \`npm run bench -- membership\` (bench/membership, lib/sim/membership.ts): the
deterministic simulator runs the same \`Membership\` core the nodes run, from seed 1; rerun any
row with \`macula sim membership --nodes N --loss P --seed 1\`. Latency 1–5 ms per message.
A formed cluster; a node joins at 5 s, a random node crashes at 10 s.

${machine}

| nodes | join known to all (s) | crash first detected (s) | crash known to all (s) | memberlist's min. suspicion timeout alone (s) | false positives | msg/node/s | B/node/s | records checked/node/s | overlay k=8: components / diameter | wall (s) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join("\n")}

\\* sampled diameter (a lower bound) above 2,000 nodes.

- **Lifeguard** (${lifeguard.nodes} nodes, 5% loss, one node paused 2 s every 10 s, ${
        lifeguard.simulatedMs / 60_000
      } simulated minutes): false positives ${lifeguard.falsePositives}, ${lifeguard.falseSuspicions} (node, member) suspicion events, all refuted, crash known to all in ${
        s(lifeguard.crashKnownMs)
      } s, ${lifeguard.messagesPerNodePerSec} msg/node/s, ${lifeguard.bytesPerNodePerSec} B/node/s; ${
        (lifeguard.wallMs / 1000).toFixed(1)
      } s of wall time.
- **Signed records** (every member's alive and left carry its Ed25519 key and signature;
  docs/membership.md, "What a member can and cannot make others believe"). What it costs, in
  the same run:

  | operation | µs | per second |
  |---|---:|---:|
${sigRows.map((r) => `  ${r}`).join("\n")}

  On the simulator at 1,000 nodes (1% loss), signed against the unsigned baseline: ${signedRun.bytesPerNodePerSec} against ${unsignedRun.bytesPerNodePerSec} B/node/s (${
        ((signedRun.bytesPerNodePerSec / unsignedRun.bytesPerNodePerSec - 1) * 100).toFixed(0)
      }% more), ${signedRun.messagesPerNodePerSec} against ${unsignedRun.messagesPerNodePerSec} msg/node/s; join known to all in ${
        s(signedRun.joinKnownMs)
      } against ${s(unsignedRun.joinKnownMs)} s, crash known to all in ${
        s(signedRun.crashKnownMs)
      } against ${
        s(unsignedRun.crashKnownMs)
      } s. A node checks ${signedRun.recordsPerNodePerSec} records a second (each once: only a record that changes its view is checked), about ${
        cpu(signedRun).toFixed(3)
      }% of a core at the check's cost above; Lifeguard's run (5% loss, a node paused every 10 s: many refutations) checks ${lifeguard.recordsPerNodePerSec}, ${
        cpu(lifeguard).toFixed(3)
      }%. A joiner checks one record per member once (10,000 members: about ${
        ((10_000 * cost.checkUs) / 1e6).toFixed(1)
      } s of one core, spread over the join).
- **Partition** (100 nodes cut in two halves for 20 s): ${partition.partitionDeaths} deaths declared across it, whole again ${
        s(partition.healedMs)
      } s after the heal.
- **Baselines.** memberlist (LAN defaults: 1 s probe interval, SuspicionMult 4) cannot declare a
  crash before its minimum suspicion timeout, 4 · log10 N probe intervals (the column above),
  before dissemination. Macula probes every 500 ms by default (docs/membership.md), so at the
  same interval memberlist's minimum would be half that column; the gain over memberlist's
  defaults comes from the interval, not from a different suspicion rule. ScaleCube's published dissemination time at 100 nodes with 1% loss is
  3.18 s; here a join reached all 100 nodes in ${s(runs[0]![1].joinKnownMs)} s.
${problems.length > 0 ? `\nProblems: ${problems.join("; ")}\n` : ""}`;
    return {
      ok: problems.length === 0,
      doc: { heading: "Membership: SWIM + Lifeguard (bench/membership)", body },
    };
  },
};
