/**
 * `macula` node process: one Macula node (`lib/node/node.ts`) on 127.0.0.1 with a throw-away
 * data dir, optionally joining another node and sharing its development CA.
 *
 * `bun run bench/messaging/macula-node.ts [--join 127.0.0.1:PORT --ca-dir DIR]`
 * Ready line: `{"ready":true,"port":N,"url":"quic://127.0.0.1:N","credsDir":…,"caDir":…}`.
 * Stops (gracefully, `node.stop()`) on stdin close / SIGTERM.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { announceAndServe } from "../lib/serve.ts";
import { loadNodeModule, type MaculaNodeOptions } from "./macula-api.ts";
import { describeError, flagMap } from "./protocol.ts";

try {
  const args = flagMap(process.argv.slice(2));
  const { Node } = await loadNodeModule();
  const dataDir = await mkdtemp(join(tmpdir(), "macula-bench-node-"));
  const opts: MaculaNodeOptions = {
    dataDir,
    listen: { host: "127.0.0.1", port: 0 },
    log: (line) => process.stderr.write(`macula-node: ${line}\n`),
  };
  const join_ = args.get("join");
  if (join_ !== undefined) {
    const m = /^(.+):(\d+)$/.exec(join_);
    if (!m) throw new Error(`--join must be host:port, got ${join_}`);
    opts.join = [{ host: m[1] as string, port: Number(m[2]) }];
  }
  const caDir = args.get("ca-dir");
  if (caDir !== undefined) {
    opts.caDir = caDir;
    opts.devCaDir = caDir;
  }
  const node = await Node.start(opts);
  const port = Number(/:(\d+)\/?$/.exec(node.url)?.[1] ?? 0);
  if (node.credsDir === null || node.caDir === null) {
    throw new Error("the node has no dev credentials dir (credsDir/caDir is null)");
  }
  announceAndServe(
    port,
    async () => {
      await node.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
    { url: node.url, credsDir: node.credsDir, caDir: node.caDir },
  );
} catch (e) {
  process.stderr.write(`macula-node: ${describeError(e)}\n`);
  process.exit(1);
}
