/**
 * One process of bench/mesh: hosts `count` real nodes on 127.0.0.1. argv[2] is JSON
 * `{ dir, count, total, k, caDir?, seedPort? }`: without `caDir` the first node makes the dev CA
 * and is the seed. Prints JSON lines on stdout:
 *
 * - `{ "seed": { caDir, creds, port } }` once the first node listens (first process only);
 * - `{ "started": epochMs, "nodes": [{ id, url }] }` once every node here has started;
 * - `{ "converged": epochMs | null, "alive": [min, max] }` once every node here sees `total`
 *   members alive (null after 120 s: the alive counts say how far they got).
 *
 * Then it runs until its stdin closes (the bench ends), and stops its nodes.
 */
import { join } from "node:path";
import process from "node:process";
import { Node } from "../../lib/node/node.ts";

const o = JSON.parse(process.argv[2]!) as {
  dir: string;
  count: number;
  total: number;
  k: number;
  caDir?: string;
  seedPort?: number;
};
// SIGTERM: exit at once (a CPU profile, BENCH_MESH_PROFILE, is written on exit).
process.on("SIGTERM", () => process.exit(0));
const say = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
const quiet = () => {};

const nodes: Node[] = [];
let caDir = o.caDir;
let seedPort = o.seedPort;
for (let i = 0; i < o.count; i++) {
  const n = await Node.start({
    dataDir: join(o.dir, `n${i}`),
    devCaDir: caDir,
    listen: { host: "127.0.0.1", port: 0 },
    join: seedPort === undefined ? [] : [{ host: "127.0.0.1", port: seedPort }],
    overlay: { k: o.k },
    log: quiet,
  });
  nodes.push(n);
  if (caDir === undefined) {
    caDir = n.caDir!;
    seedPort = n.endpoint.address.port;
    say({ seed: { caDir, creds: n.credsDir, port: seedPort } });
  }
}
say({ started: Date.now(), nodes: nodes.map((n) => ({ id: n.nodeId, url: n.url })) });

const alive = () => nodes.map((n) => n.membership.core.liveCount);
try {
  await Promise.all(nodes.map((n) => n.waitForMembers(o.total, 120_000)));
  say({ converged: Date.now(), alive: [Math.min(...alive()), Math.max(...alive())] });
} catch {
  say({ converged: null, alive: [Math.min(...alive()), Math.max(...alive())] });
}

// Until the bench closes stdin.
for await (const _ of process.stdin) { /* nothing is sent */ }
await Promise.allSettled(nodes.map((n) => n.stop()));
process.exit(0);
