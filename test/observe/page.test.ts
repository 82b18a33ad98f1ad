/**
 * The live topology page (lib/observe/page.ts) in headless Chromium (Debian's `chromium`, driven
 * by playwright-core): the page of a 3-node mesh on 127.0.0.1 shows the three members alive,
 * its two routes and their paths, and no script error or CSP violation; then a node stops and
 * the page shows it no longer alive, and traffic shows as a message rate. Every wait is on the
 * page's DOM, bounded.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { type Admin, startAdmin } from "../../lib/observe/admin.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";

const WAIT = { timeout: 30_000 };

let m: Mesh;
let admin: Admin;
let browser: Browser;
let page: Page;
const problems: string[] = [];

beforeAll(async () => {
  m = await mesh(3, { admin: null });
  admin = await startAdmin(m.nodes[0]!, { host: "127.0.0.1", port: 0 });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  // Nothing but the admin listener itself: no CDN, no other origin.
  page.on("request", (r) => {
    if (!r.url().startsWith(admin.url)) problems.push(`request elsewhere: ${r.url()}`);
  });
  await page.goto(admin.url);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await admin?.close();
  await m?.close();
});

/** The state the page shows for member `id` (null: no such row). */
function stateOf(id: string): Promise<string | null> {
  return page.evaluate(
    (id) => document.querySelector(`tr[data-member="${id}"]`)?.getAttribute("data-state") ?? null,
    id,
  );
}

test("the page shows this node, the three members alive, and two direct routes", async () => {
  await page.waitForFunction(
    () => document.querySelectorAll('tr[data-member][data-state="alive"]').length === 3,
    undefined,
    WAIT,
  );
  for (const n of m.nodes) expect(await stateOf(n.nodeId)).toBe("alive");
  expect(await page.textContent("#node-id")).toBe(m.nodes[0]!.nodeId);
  expect(await page.textContent("#node-realm")).toBe("realm dev");
  expect(await page.getAttribute("#status", "data-live")).toBe("yes");
  await page.waitForFunction(
    () => document.querySelectorAll('tr[data-route][data-path="direct"]').length === 2,
    undefined,
    WAIT,
  );
  // The diagram: this node and one circle per route (drawn by the page's own script).
  expect(await page.locator("#graph circle").count()).toBeGreaterThanOrEqual(3);
  expect(await page.locator("#graph line").count()).toBe(2);
  expect(problems).toEqual([]);
});

test("messages through the node show as a rate", async () => {
  const sub = await m.client(1);
  const s = sub.subscribe("page.>");
  await sub.flush();
  const pub = await m.client(0);
  // Publishes until the page shows a rate above zero (each round is one poll of the page).
  let shown = false;
  for (let i = 0; i < 60 && !shown; i++) {
    for (let j = 0; j < 20; j++) pub.publish("page.x", "hello");
    await pub.flush();
    shown = await page.waitForFunction(
      () => {
        const v = Number(document.getElementById("rate-in")!.textContent);
        return Number.isFinite(v) && v > 0;
      },
      undefined,
      { timeout: 2_000 },
    ).then(() => true, () => false);
  }
  expect(shown).toBe(true);
  void s;
});

test("a node stops: the page shows it no longer alive", async () => {
  const gone = m.nodes[2]!;
  await gone.stop();
  await page.waitForFunction(
    (id) => {
      const st = document.querySelector(`tr[data-member="${id}"]`)?.getAttribute("data-state");
      return st !== undefined && st !== null && st !== "alive";
    },
    gone.nodeId,
    WAIT,
  );
  expect(["left", "dead", "suspect"]).toContain((await stateOf(gone.nodeId)) ?? "none");
  // The others are still alive, and the page is still live.
  expect(await stateOf(m.nodes[1]!.nodeId)).toBe("alive");
  expect(await page.getAttribute("#status", "data-live")).toBe("yes");
  expect(problems).toEqual([]);
});

test("the node unreachable: the page says so", async () => {
  await admin.close();
  await page.waitForFunction(
    () => document.getElementById("status")!.getAttribute("data-live") !== "yes",
    undefined,
    WAIT,
  );
  expect(await page.textContent("#status-text")).toMatch(/no answer|unreachable/);
});
