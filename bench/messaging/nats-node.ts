/**
 * `nats` server process: runs a real `nats-server` (Debian package `nats-server`) from a temp
 * config on 127.0.0.1, prints the ready line once it listens (and, with `--route`, once the
 * route to the other server is up), and stops it on stdin close / SIGTERM.
 *
 * `bun run bench/messaging/nats-node.ts --bin /usr/sbin/nats-server --name a [--cluster]
 *  [--route 127.0.0.1:PORT]`
 * Ready line: `{"ready":true,"port":N,"url":"nats://127.0.0.1:N","routePort":M}` (M with
 * `--cluster` or `--route` only). Logs (nats-server's own) go to stderr.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { announceAndServe } from "../lib/serve.ts";
import { describeError, flagMap, strFlag } from "./protocol.ts";

const args = flagMap(process.argv.slice(2).filter((a) => a !== "--cluster"));
const clustered = process.argv.includes("--cluster") || args.has("route");
const bin = strFlag(args, "bin");
const name = strFlag(args, "name");
const route = args.get("route");

const dir = await mkdtemp(join(tmpdir(), "macula-bench-nats-"));
const conf = join(dir, "nats.conf");
// Port -1: nats-server picks a free port and logs it. Everything else at its defaults.
const lines = [
  `listen: "127.0.0.1:-1"`,
  `server_name: "bench-${name}"`,
];
if (clustered) {
  lines.push(`cluster {`, `  name: "bench"`, `  listen: "127.0.0.1:-1"`);
  if (route !== undefined) lines.push(`  routes: ["nats-route://${route}"]`);
  lines.push(`}`);
}
await writeFile(conf, `${lines.join("\n")}\n`);

const child = spawn(bin, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
let exited = false;
const exitP = new Promise<void>((res) =>
  child.on("exit", () => {
    exited = true;
    res();
  })
);
child.on("error", (e) => {
  process.stderr.write(`nats-node: cannot run ${bin}: ${e.message}\n`);
  process.exit(1);
});

let log = "";
let port = 0;
let routePort = 0;
let serverReady = false;
let routeUp = route === undefined;
let announced = false;

async function stop(): Promise<void> {
  if (!exited) {
    child.kill("SIGTERM");
    await Promise.race([exitP, new Promise((r) => setTimeout(r, 3000))]);
    if (!exited) child.kill("SIGKILL");
  }
  await rm(dir, { recursive: true, force: true });
}

child.stderr.setEncoding("utf8").on("data", (d: string) => {
  process.stderr.write(d);
  if (announced) return;
  log += d;
  port ||= Number(/client connections on 127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0);
  routePort ||= Number(/route connections on 127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0);
  serverReady ||= log.includes("Server is ready");
  routeUp ||= log.includes("Route connection created");
  if (port > 0 && serverReady && routeUp && (!clustered || routePort > 0)) {
    announced = true;
    log = "";
    const extra: Record<string, unknown> = { url: `nats://127.0.0.1:${port}` };
    if (clustered) extra.routePort = routePort;
    announceAndServe(port, stop, extra);
  }
});

void exitP.then(async () => {
  if (announced) return; // the runner sees the exit through exitedEarly()
  process.stderr.write(`nats-node: nats-server exited before it was ready\n`);
  await rm(dir, { recursive: true, force: true }).catch((e) =>
    process.stderr.write(describeError(e))
  );
  process.exit(1);
});
