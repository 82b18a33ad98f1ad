/**
 * No silent loss into a dying route: node A forwards a publisher's messages to node B (a
 * `macula node up` process with a subscriber); B is killed outright (no goodbye) while A keeps
 * forwarding. When A's route to B goes down, the forwards B never confirmed (`RCVD`) are counted
 * as lost (`dropped.lostInRoute`) and logged, instead of passing for delivered. Real QUIC on
 * 127.0.0.1; every wait is bounded.
 */
import { afterAll, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "../../lib/client/client.ts";
import { Node } from "../../lib/node/node.ts";
import { CONFIRM_EVERY } from "../../lib/node/links.ts";
import { Proc } from "../helpers/proc.ts";
import { until } from "../helpers/quic.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "macula-route-loss-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("forwards into a route whose node died are counted as lost, not as delivered", async () => {
  const logs: string[] = [];
  const a = await Node.start({
    dataDir: join(dir, "a"),
    listen: { host: "127.0.0.1", port: 0 },
    log: (l) => logs.push(l),
  });
  const args = [
    "node",
    "up",
    "--ready-json",
    "--data-dir",
    join(dir, "b"),
    "--dev-ca-dir",
    a.caDir!,
    "--listen",
    "127.0.0.1:0",
    "--join",
    `quic://127.0.0.1:${a.endpoint.address.port}`,
  ];
  const b = new Proc(
    args,
    Bun.spawn({
      cmd: [process.execPath, MAIN, ...args],
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 90_000,
      killSignal: "SIGKILL",
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
  );
  const pub = await connect({ url: a.url, creds: a.credsDir! });
  try {
    await b.waitFor("out", "\n");
    const ready = JSON.parse(b.lines()[0]!) as { url: string; credsDir: string; nodeId: string };
    const sub = await connect({ url: ready.url, creds: ready.credsDir, reconnect: false });
    let got = 0;
    const s = sub.subscribe("loss.x");
    void (async () => {
      for await (const _ of s) got++;
    })();
    await sub.flush();
    const routeToB = () => a.snapshot().routes.some((r) => r.nodeId === ready.nodeId);
    await until(routeToB, "a route from A to B");
    // B's interest reached A: a flush waits for B's node.
    await until(() => a.router.snapshot().remoteInterest > 0, "B's interest at A");
    for (let i = 0; i < 200; i++) pub.publish("loss.x", "before");
    await pub.flush();
    await until(() => got === 200, "the first 200 at B's subscriber");
    // B dies without a word; A keeps forwarding until its route to B goes down.
    b.p.kill("SIGKILL");
    await b.code();
    let sent = 0;
    while (routeToB() && sent < 3000) {
      pub.publish("loss.x", "after");
      sent++;
      if (sent % 10 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => !routeToB(), "A's route to B going down", 60_000);
    const snap = a.snapshot();
    const forwarded = snap.router.forwarded;
    const lost = snap.dropped.lostInRoute;
    const dropped = snap.dropped.forwards;
    expect(forwarded).toBeGreaterThan(200);
    // What was forwarded and not delivered is now counted: lost, or dropped for backpressure.
    // The rest (up to one confirmation window) is what B took just before it died.
    expect(lost).toBeGreaterThan(0);
    expect(Math.abs(forwarded - dropped - lost - got)).toBeLessThanOrEqual(2 * CONFIRM_EVERY);
    expect(logs.some((l) => l.includes(`forwarded messages its node never confirmed`))).toBe(true);
    await sub.close();
  } finally {
    b.p.kill("SIGKILL");
    await pub.close();
    await a.stop();
  }
}, 120_000);
