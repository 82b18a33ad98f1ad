/**
 * The standing abuse suite (issue 13): one node on 127.0.0.1, a well-behaved publisher,
 * subscriber, caller and provider on it, and for each attack of bench/abuse (attack.ts, its own
 * process, one valid certificate of the realm) a bounded run during which the well-behaved
 * clients publish, receive and call. Each case asserts that the node survives, that the attacker
 * is limited and counted where `inspect` shows it, and that every well-behaved message and call
 * succeeded throughout. bench/abuse measures the same attacks' cost in latency; here only
 * correctness is asserted. Silent loss has its own cases: test/net/failfast.test.ts (a client
 * whose node dies) and test/net/route-loss.test.ts (forwards into a dying route).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { type Client, connect } from "../../lib/client/mod.ts";
import { issueCert, loadCa, writeCredsDir } from "../../lib/identity/mod.ts";
import { Node } from "../../lib/node/node.ts";
import type { NodeSnapshot } from "../../lib/node/snapshot.ts";
import { withTimeout } from "../../lib/util/mod.ts";
import { Proc } from "../helpers/proc.ts";

const ATTACK = fileURLToPath(new URL("../../bench/abuse/attack.ts", import.meta.url));
let dir: string;
let node: Node;
let nodeCreds: string;
let issueClient: (kind: string) => Promise<string>;
const clients: Client[] = [];
let pub: Client, sub: Client, caller: Client;
/** Status changes of the well-behaved clients, for failure messages. */
const statusLog: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-abuse-"));
  node = await Node.start({
    dataDir: join(dir, "n"),
    listen: { host: "127.0.0.1", port: 0 },
    // Small queues, so that the attacks that fill them reach their bounds within the case.
    maxBacklog: 256 * 1024,
  });
  const c = async () => {
    const n = clients.length;
    const x = await connect({
      url: node.url,
      creds: node.credsDir!,
      onError: () => {},
      // A failure names what the well-behaved clients went through (a lost connection, …).
      onStatus: (s, detail) => statusLog.push(`client ${n}: ${s} (${detail})`),
    });
    clients.push(x);
    return x;
  };
  [pub, sub, caller] = [await c(), await c(), await c()];
  const provider = await c();
  await provider.serve("abuse.echo", (p) => p).ready;
  // The procedure the deaf caller abuses has a provider of its own.
  await (await c()).serve("abuse.big", () => new Uint8Array(32 * 1024)).ready;
  // The attacker's own certificates: a client's for each attack, and a node's for the attacks
  // that need one (punch, gossip). Its own, as a real one's would be: a hold-down of its
  // certificate must not hold down the well-behaved clients, nor the next case's attacker.
  const ca = await loadCa(node.caDir!);
  const issue = async (name: string, role: "client" | "node") => {
    const d = join(dir, name);
    const cert = await issueCert({ ca, name, role, durationMs: 3_600_000 });
    await writeCredsDir(d, { ca: ca.pem, cert: cert.pem, key: cert.keyPem! });
    return d;
  };
  issueClient = (kind) => issue(`attacker-${kind}`, "client");
  nodeCreds = await issue("attacker-node", "node");
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Rounds of publish → receive and call → reply the well-behaved clients make during an attack:
 * at least `MIN_ROUNDS`, and on until the node has counted the attacker (at most `MAX_ROUNDS`).
 */
const MIN_ROUNDS = 40;
const MAX_ROUNDS = 3000;

/** The well-behaved clients' work: every message received, every call answered. */
async function wellBehaved(
  counted: () => boolean,
): Promise<{ rounds: number; received: number; answered: number }> {
  const it = sub.subscribe("victim.latency")[Symbol.asyncIterator]();
  await sub.flush();
  // 32 KiB: a slow consumer's stream window (1 MiB) and the node's queue bound fill within the case.
  const payload = new Uint8Array(32 * 1024).fill(7);
  let received = 0, answered = 0, rounds = 0;
  try {
    for (; rounds < MAX_ROUNDS && (rounds < MIN_ROUNDS || !counted()); rounds++) {
      const published = node.router.stats.published;
      pub.publish("victim.latency", payload);
      // Bounded: a message that never comes fails the case with what happened, not a hang.
      const m = await withTimeout(it.next(), 20_000, () =>
        new Error(
          `round ${rounds}: the publish was not received within 20 s; the node ${
            node.router.stats.published > published ? "routed it" : "never got it"
          }; client status changes: ${statusLog.slice(-6).join("; ") || "none"}`,
        ));
      if (!m.done && m.value.payload.length === payload.length) received++;
      const r = await caller.call("abuse.echo", payload.subarray(0, 128), { timeoutMs: 10_000 });
      if (r.length === 128) answered++;
    }
  } finally {
    await it.return?.();
  }
  return { rounds, received, answered };
}

/**
 * Runs `kind` against the node while the well-behaved clients work, until `counted` says the
 * node has counted the attacker; the snapshot after.
 */
async function under(
  kind: string,
  counted: (s: NodeSnapshot) => boolean,
): Promise<{ snap: NodeSnapshot; attacker: string }> {
  const args = [
    ATTACK,
    kind,
    String(node.endpoint.address.port),
    await issueClient(kind),
    nodeCreds,
    node.nodeId,
  ];
  const a = new Proc(
    args,
    Bun.spawn({
      cmd: [process.execPath, ...args],
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
  );
  try {
    await a.waitFor("out", '"ready":true', 30_000);
    const done = await wellBehaved(() => counted(node.snapshot()));
    expect(done.rounds).toBeLessThan(MAX_ROUNDS); // the node counted the attacker meanwhile
    expect(done).toEqual({ rounds: done.rounds, received: done.rounds, answered: done.rounds });
  } finally {
    // SIGTERM stops its loop; an attacker stuck in a write the node's flow control holds gets
    // SIGKILL after a grace of 5 s (its exit, not its goodbye, is what the case waits for).
    a.p.kill("SIGTERM");
    const grace = setTimeout(() => a.p.kill("SIGKILL"), 5000);
    await a.code().catch(() => {});
    clearTimeout(grace);
  }
  expect(node.running).toBe(true);
  const snap = node.snapshot();
  expect(counted(snap)).toBe(true);
  return { snap, attacker: a.err };
}

const frames = (s: NodeSnapshot) => Object.values(s.refused.frames).reduce((a, b) => a + b, 0);

describe("under attack, a well-behaved client publishes, receives and calls throughout", () => {
  test(
    "membership lies (gossip): made-up members and impossible claims refused, counted",
    async () => {
      const b = node.snapshot().membership;
      const { snap } = await under(
        "gossip",
        (s) => s.membership.uncertified > b.uncertified && s.membership.claimsAhead > b.claimsAhead,
      );
      expect(snap.membership.handlerFailures).toBe(0);
      expect(snap.members.alive).toBe(1); // itself: no made-up member got in
    },
    90_000,
  );

  test("reflection (punch): requests past the rates are refused, counted", async () => {
    const b = node.snapshot().traversal.refused;
    await under("punch", (s) => s.traversal.refused > b);
  }, 90_000);

  test("exhaustion: a slow consumer's messages are dropped and counted, not queued", async () => {
    const b = node.snapshot().dropped;
    await under(
      "slow-consumer",
      (s) => s.dropped.messages + s.dropped.closedBackedUp > b.messages + b.closedBackedUp,
    );
  }, 90_000);

  test(
    "exhaustion: a deaf caller is refused calls, closed and its certificate held down, counted",
    async () => {
      // Without the hold-down it reconnected at once, each session had the provider answer a
      // thousand calls nobody read, and those answers crowded the well-behaved clients out.
      const b = node.snapshot();
      await under(
        "deaf-caller",
        (s) =>
          s.dropped.closedBackedUp + s.router.limited >
            b.dropped.closedBackedUp + b.router.limited &&
          s.refused.heldDown.refused > b.refused.heldDown.refused,
      );
    },
    90_000,
  );

  test("exhaustion: subscription churn is limited, counted", async () => {
    const b = node.snapshot();
    await under("sub-churn", (s) => s.router.limited + frames(s) > b.router.limited + frames(b));
  }, 90_000);

  test(
    "exhaustion: malformed frames close their sessions, counted by kind; held down",
    async () => {
      const b = node.snapshot();
      // … and the certificate is held down: its next sessions are refused at the handshake.
      await under(
        "malformed",
        (s) => frames(s) > frames(b) && s.refused.heldDown.refused > b.refused.heldDown.refused,
      );
    },
    90_000,
  );

  test(
    "exhaustion: frames announced far over the payload limit are refused at their length",
    async () => {
      const b = node.snapshot().refused.frames.frame ?? 0;
      await under("big-frames", (s) => (s.refused.frames.frame ?? 0) > b);
    },
    90_000,
  );

  test(
    "exhaustion: half-open handshakes cost no state: a stateless retry each, counted",
    async () => {
      // The attacker never reads, so it never returns a retry token: no handshake is ever held
      // for it (the per-source and total bounds, for attackers that do, are test/quic's).
      const b = node.endpoint.stats.retriesSent;
      await under("handshakes", () => node.endpoint.stats.retriesSent > b + 64);
    },
    90_000,
  );
});
