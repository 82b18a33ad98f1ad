/**
 * `macula` node process: one Macula node (`lib/node/node.ts`) on 127.0.0.1 with a throw-away
 * data dir, optionally joining another node and sharing its development CA.
 *
 * `bun run bench/messaging/macula-node.ts [--join 127.0.0.1:PORT --ca-dir DIR] [--shortcuts N]
 *  [--line-peer NODE_ID --members N]`
 * Ready line: `{"ready":true,"port":N,"url":"quic://127.0.0.1:N","nodeId":…,"credsDir":…,"caDir":…}`.
 * Stops (gracefully, `node.stop()`) on stdin close / SIGTERM; first it writes one line
 * `macula-node: stats {…}` (`NodeStats`, protocol.ts) to stderr: its routes, router counters,
 * and what `--line-peer` let go.
 *
 * `--line-peer ID` makes this node the end of a line (the routed workloads: A ← B ← C, this is
 * C and ID is B): it keeps a route to ID only. Every other route that comes up is let go at once
 * (`node.retireRoute`, as the overlay lets a route go: drained, then closed); both of its ends'
 * overlays then avoid each other (lib/mesh/overlay: until their next 30 s sweep), so what this
 * node and the far end send each other is forwarded by ID. The ready line waits until `--members`
 * members are alive and the direct route the overlay makes to the far end has come up and been
 * let go, so the line is in place when the workload starts; a route let go after that is counted
 * (`lineRetiredAfterReady`), and the runner rejects the figure.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { announceAndServe } from "../lib/serve.ts";
import {
  loadNodeModule,
  type MaculaLog,
  type MaculaNode,
  type MaculaNodeOptions,
} from "./macula-api.ts";
import { describeError, flagMap, intFlag, NODE_STATS_PREFIX, type NodeStats } from "./protocol.ts";

const write = (line: string) => process.stderr.write(`macula-node: ${line}\n`);

/**
 * `--line-peer`: the times a route to another node than the line peer came up (or was found up)
 * and was let go, before the ready line and after it (which spoils the run).
 */
const line = { before: 0, after: 0, ready: false };
/** Looks at the routes whenever one comes up (`up`) or goes down (set once the node runs). */
let onRouteChange: (up: boolean) => void = () => {};

/** Text lines to stderr (info and up), and a look at the routes whenever one changes. */
const log: MaculaLog = {
  debug() {},
  info(event, text) {
    write(text);
    if (event === "route.up" || event === "route.down") {
      const up = event === "route.up";
      queueMicrotask(() => onRouteChange(up));
    }
  },
  warn: (_e, text) => write(text),
  error: (_e, text) => write(text),
};

function statsOf(node: MaculaNode): NodeStats {
  const s = node.router.stats;
  return {
    nodeId: node.nodeId,
    routes: [...node.routes],
    router: {
      published: s.published,
      delivered: s.delivered,
      forwarded: s.forwarded,
      calls: s.calls,
      replies: s.replies,
      noRoute: s.noRoute,
      hopLimit: s.hopLimit,
      shortcutsOpened: s.shortcutsOpened,
      viaShortcut: s.viaShortcut,
    },
    lineRetiredBeforeReady: line.before,
    lineRetiredAfterReady: line.after,
  };
}

/**
 * Keeps `node` the end of a line through `peer`: lets every other route go as it comes up, and
 * resolves once `members` are alive and a direct route to another node has come and gone.
 */
async function holdLine(node: MaculaNode, peer: string, members: number): Promise<void> {
  let resolve: () => void = () => {};
  const settled = new Promise<void>((r) => (resolve = r));
  onRouteChange = (up) => {
    const routes = node.routes;
    const strays = routes.filter((r) => r !== peer);
    if (strays.length > 0 && up) {
      if (line.ready) {
        line.after++;
        write(
          `line: a route to ${
            strays.map((r) => r.slice(0, 12)).join(", ")
          }… came up during the run: let go`,
        );
      } else line.before++;
    }
    // Idempotent: a route already being let go (drained) is left to finish.
    for (const r of strays) node.retireRoute(r);
    if (line.before > 0 && strays.length === 0 && routes.includes(peer)) resolve();
  };
  await node.waitForMembers(members, 20_000);
  onRouteChange(true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `line: no direct route to another member came and went within 20 s (routes: ${
              node.routes.map((r) => r.slice(0, 12)).join(", ") || "none"
            }, let go: ${line.before})`,
          ),
        ),
      20_000,
    );
  });
  try {
    await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
  line.ready = true;
}

try {
  const args = flagMap(process.argv.slice(2));
  const { Node } = await loadNodeModule();
  const dataDir = await mkdtemp(join(tmpdir(), "macula-bench-node-"));
  const opts: MaculaNodeOptions = { dataDir, listen: { host: "127.0.0.1", port: 0 }, log };
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
  if (args.has("shortcuts")) opts.overlay = { shortcuts: intFlag(args, "shortcuts") };
  const linePeer = args.get("line-peer");
  const node = await Node.start(opts);
  if (linePeer !== undefined) await holdLine(node, linePeer, intFlag(args, "members", 3));
  const port = Number(/:(\d+)\/?$/.exec(node.url)?.[1] ?? 0);
  if (node.credsDir === null || node.caDir === null) {
    throw new Error("the node has no dev credentials dir (credsDir/caDir is null)");
  }
  announceAndServe(
    port,
    async () => {
      process.stderr.write(`${NODE_STATS_PREFIX}${JSON.stringify(statsOf(node))}\n`);
      onRouteChange = () => {}; // the routes go now: nothing to count
      await node.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
    { url: node.url, nodeId: node.nodeId, credsDir: node.credsDir, caDir: node.caDir },
  );
} catch (e) {
  write(describeError(e));
  process.exit(1);
}
