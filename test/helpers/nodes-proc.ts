/**
 * Nodes in a process of their own, for tests that kill them with SIGKILL (no goodbye): argv[2]
 * is JSON `{ dir, caDir, seedPort, count, k }`. Starts `count` nodes joining the seed, prints one
 * JSON line `{ ids }` once they are started, then runs until killed.
 */
import { join } from "node:path";
import process from "node:process";
import { Node } from "../../lib/node/node.ts";

const o = JSON.parse(process.argv[2]!) as {
  dir: string;
  caDir: string;
  seedPort: number;
  count: number;
  k: number;
};
const nodes: Node[] = [];
for (let i = 0; i < o.count; i++) {
  nodes.push(
    await Node.start({
      dataDir: join(o.dir, `p${i}`),
      devCaDir: o.caDir,
      listen: { host: "127.0.0.1", port: 0 },
      join: [{ host: "127.0.0.1", port: o.seedPort }],
      overlay: { k: o.k },
    }),
  );
}
process.stdout.write(`${JSON.stringify({ ids: nodes.map((n) => n.nodeId) })}\n`);
setInterval(() => {}, 1 << 30); // until killed
