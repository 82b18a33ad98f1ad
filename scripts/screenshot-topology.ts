/**
 * Writes docs/topology.png: a screenshot of the live topology page (lib/observe/page.ts) of a
 * small mesh on 127.0.0.1 with some traffic, taken in headless Chromium (`/usr/bin/chromium`,
 * driven by playwright-core). One node of the mesh stops before the shot, so the page shows a
 * member that left.
 *
 *   bun scripts/screenshot-topology.ts [out.png]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { connect } from "../lib/client/mod.ts";
import { Node } from "../lib/node/mod.ts";
import { startAdmin } from "../lib/observe/admin.ts";

const out = resolve(process.argv[2] ?? join(import.meta.dirname ?? ".", "../docs/topology.png"));
const dir = mkdtempSync(join(tmpdir(), "macula-shot-"));
const nodes: Node[] = [];
const tags = [["seed"], ["edge", "eu-west"], ["edge", "us-east"], ["gpu"], ["edge"]];
try {
  for (let i = 0; i < 5; i++) {
    nodes.push(
      await Node.start({
        dataDir: join(dir, `n${i}`),
        listen: { host: "127.0.0.1", port: 0 },
        devCaDir: nodes[0]?.caDir ?? undefined,
        join: nodes.map((n) => ({ host: "127.0.0.1", port: n.endpoint.address.port })),
        tags: tags[i],
        admin: null,
      }),
    );
  }
  await Promise.all(nodes.map((n) => n.waitForMembers(5, 30_000)));
  const admin = await startAdmin(nodes[0]!, { host: "127.0.0.1", port: 0 });
  const sub = await connect({ url: nodes[1]!.url, creds: nodes[0]!.credsDir! });
  const s = sub.subscribe("demo.>");
  await sub.flush();
  const pub = await connect({ url: nodes[0]!.url, creds: nodes[0]!.credsDir! });
  const traffic = setInterval(() => {
    for (let i = 0; i < 40; i++) pub.publish("demo.reading", "x".repeat(200));
    // Some to nobody, so the drops table has a row.
    for (let i = 0; i < 3; i++) pub.publish("nobody.listens", "x");
  }, 50);
  void (async () => {
    for await (const _ of s) { /* consumed */ }
  })();
  await nodes[4]!.stop();
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
  try {
    const page = await browser.newPage({
      viewport: { width: 1360, height: 1000 },
      deviceScaleFactor: 1,
      colorScheme: "dark",
    });
    await page.goto(admin.url);
    // The stopped node shows as gone, and a few polls give the rates and the sparkline.
    await page.waitForFunction(
      (id) => {
        const st = document.querySelector(`tr[data-member="${id}"]`)?.getAttribute("data-state");
        return st === "left" || st === "dead";
      },
      nodes[4]!.nodeId,
      { timeout: 30_000 },
    );
    await page.waitForFunction(
      () =>
        document.querySelectorAll("#spark polyline").length === 2 &&
        Number(document.getElementById("rate-in")!.textContent) > 0,
      undefined,
      { timeout: 30_000 },
    );
    for (let i = 0; i < 6; i++) {
      await page.waitForFunction(
        (n) =>
          document.querySelector("#spark polyline")!.getAttribute("points")!.split(" ").length >= n,
        i + 3,
        { timeout: 10_000 },
      );
    }
    await page.screenshot({ path: out, fullPage: true });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
    clearInterval(traffic);
    await pub.close();
    await sub.close();
    await admin.close();
  }
} finally {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
}
