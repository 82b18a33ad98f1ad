/**
 * Shortcuts on real nodes (docs/routing.md, "Shortcuts"): 8 nodes on 127.0.0.1 at overlay k = 2,
 * so most pairs are 2+ hops apart. A stream from a client on one node to a subscriber on a far
 * node moves onto a direct shortcut (a channel on a session of its own or one membership already
 * has): every message arrives once and in order, the peers see a shortcut, and it is not a route.
 * A node whose bound is 0 (`overlay.shortcuts: 0`) takes a peer's shortcut and lets it go at once:
 * the channel ends, the session stays, no message is lost, and the dialer does not dial again
 * within its retry interval. Real QUIC; every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect } from "../../lib/client/client.ts";
import type { Node } from "../../lib/node/node.ts";
import { joinOneSeed } from "../helpers/mesh.ts";
import { until } from "../helpers/quic.ts";

const N = 8;
const dir = mkdtempSync(join(tmpdir(), "macula-shortcuts-"));
const nodes: Node[] = [];
const clients: Client[] = [];
/** Node N-1 takes no shortcuts. */
const closed = N - 1;

const hops = (from: Node, to: Node) =>
  from.router.interest().find((o) => o.node === to.nodeId)?.path?.hops;

beforeAll(async () => {
  await joinOneSeed(
    dir,
    N,
    (i) => ({ overlay: { k: 2, shortcuts: i === closed ? 0 : 128 }, log: () => {} }),
    nodes,
  );
  await Promise.all(nodes.map((n) => n.waitForMembers(N, 30_000)));
  // A subscriber on every node (topic `t.<i>`), and every node knows a path to every other.
  for (let i = 0; i < N; i++) {
    const c = await connect({ url: nodes[i]!.url, creds: nodes[0]!.credsDir! });
    clients.push(c);
    await c.subscribe(`t.${i}`);
  }
  await until(
    () => nodes.every((n) => nodes.every((m) => m === n || hops(n, m) !== undefined)),
    "every node knows a path to every other",
    30_000,
  );
}, 150_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** Waits until `a` holds `b`'s record with a subscription to `pattern`. */
const known = (a: Node, b: Node, pattern: string) =>
  until(
    () =>
      a.router.interest().some((o) =>
        o.node === b.nodeId && o.subs.some((s) => s.pattern === pattern)
      ),
    `${pattern} on the far node is known`,
    10_000,
  );

/** A pair of nodes 2+ hops apart, the second one of `to`. */
function farPair(to: number[]): [Node, Node] {
  for (const b of to) {
    for (const a of nodes) {
      if (a !== nodes[b] && (hops(a, nodes[b]!) ?? 0) >= 2 && a !== nodes[closed]) {
        return [a, nodes[b]!];
      }
    }
  }
  throw new Error("no pair of nodes 2+ hops apart: the overlay is not what k = 2 gives");
}

/**
 * Publishes `topic` from `pub` until `done()` (each publish flushed: paced by the node's
 * neighbours' answers), then `extra` more; returns how many it published.
 */
async function streamUntil(pub: Client, topic: string, done: () => boolean, extra: number) {
  let n = 0;
  for (; n < 500 && !done(); n++) {
    await pub.publish(topic, `${n}`);
    await pub.flush();
  }
  expect(done()).toBe(true);
  for (let i = 0; i < extra; i++, n++) await pub.publish(topic, `${n}`);
  await pub.flush();
  return n;
}

async function collect(c: Client, topic: string): Promise<{ got: string[]; stop: () => void }> {
  const got: string[] = [];
  const sub = await c.subscribe(topic);
  void (async () => {
    for await (const m of sub) got.push(m.text());
  })();
  return { got, stop: () => void sub.unsubscribe() };
}

describe("shortcuts on real nodes", () => {
  test(
    "a stream to a far node moves onto a shortcut: once each, in order, and not a route",
    async () => {
      const [a, b] = farPair(nodes.map((_, i) => i).filter((i) => i !== closed));
      const bi = nodes.indexOf(b);
      const { got, stop } = await collect(clients[bi]!, "s.one");
      await known(a, b, "s.one");
      const pub = await connect({ url: a.url, creds: nodes[0]!.credsDir! });
      clients.push(pub);
      const n = await streamUntil(pub, "s.one", () => a.snapshot().router.viaShortcut > 0, 100);
      await until(() => got.length >= n, `${n} messages at the subscriber`, 10_000);
      expect(got).toEqual(Array.from({ length: n }, (_, i) => `${i}`));
      const sa = a.snapshot();
      expect(sa.shortcuts.open).toBe(1);
      expect(sa.shortcuts.dialed).toBe(1);
      expect(sa.router.viaShortcut).toBeGreaterThanOrEqual(100);
      expect(b.snapshot().shortcuts.open).toBe(1);
      // A shortcut is not a route: the overlay's bound and paths are untouched.
      expect(a.routes).not.toContain(b.nodeId);
      expect(sa.peers.find((p) => p.nodeId === b.nodeId)?.role).toBe("shortcut");
      expect(hops(a, b)).toBeGreaterThanOrEqual(2);
      expect(a.router.interest().find((o) => o.node === b.nodeId)?.shortcut).toBe(true);
      stop();
    },
    60_000,
  );

  test(
    "a node past its bound takes a shortcut and lets it go at once: nothing lost, the session kept, no dial again",
    async () => {
      const [a, b] = farPair([closed]);
      const { got, stop } = await collect(clients[closed]!, "s.two");
      await known(a, b, "s.two");
      const pub = await connect({ url: a.url, creds: nodes[0]!.credsDir! });
      clients.push(pub);
      const before = a.snapshot();
      const n = await streamUntil(
        pub,
        "s.two",
        () =>
          b.snapshot().shortcuts.refused > 0 &&
          a.snapshot().shortcuts.open === before.shortcuts.open,
        50,
      );
      await until(() => got.length >= n, `${n} messages at the subscriber`, 10_000);
      expect(got).toEqual(Array.from({ length: n }, (_, i) => `${i}`));
      const sa = a.snapshot();
      expect(sa.shortcuts.dialed - before.shortcuts.dialed).toBe(1); // not dialed again
      expect(sa.router.shortcutsClosed - before.router.shortcutsClosed).toBe(1);
      expect(b.snapshot().shortcuts.open).toBe(0);
      expect(sa.dropped.lostInRoute).toBe(0);
      // The channel ended, not the session.
      expect(sa.peers.some((p) => p.nodeId === b.nodeId)).toBe(true);
      stop();
    },
    60_000,
  );
});
