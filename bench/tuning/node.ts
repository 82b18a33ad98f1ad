/**
 * bench/tuning's node: one Macula node (`lib/node`) on 127.0.0.1 with a throw-away data dir,
 * its development realm, and the `limits` given as JSON (camelCase keys of `NodeConfig`'s
 * `limits`; absent keys keep their defaults).
 *
 * `bun run bench/tuning/node.ts [--limits '{"maxPayload":4194304}']`
 * Ready line: `{"ready":true,"port":N,"url":"quic://127.0.0.1:N","credsDir":…,"limits":{…}}`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../lib/node/node.ts";
import type { NodeConfig } from "../../lib/node/config.ts";
import { flagMap } from "../lib/flags.ts";
import { announceAndServe } from "../lib/serve.ts";
import { describeError } from "../quic/protocol.ts";

try {
  const args = flagMap(process.argv.slice(2));
  const limits = JSON.parse(args.get("limits") ?? "{}") as Partial<NodeConfig["limits"]>;
  const dataDir = await mkdtemp(join(tmpdir(), "macula-bench-tuning-"));
  const node = await Node.start({
    dataDir,
    listen: { host: "127.0.0.1", port: 0 },
    limits,
    log: (line) => process.stderr.write(`tuning-node: ${line}\n`),
  });
  const port = Number(/:(\d+)\/?$/.exec(node.url)?.[1] ?? 0);
  if (node.credsDir === null) throw new Error("the node has no dev credentials dir");
  announceAndServe(
    port,
    async () => {
      await node.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
    { url: node.url, credsDir: node.credsDir, limits: node.config.limits },
  );
} catch (e) {
  process.stderr.write(`tuning-node: ${describeError(e)}\n`);
  process.exit(1);
}
