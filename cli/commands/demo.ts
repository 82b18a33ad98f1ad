/**
 * `macula demo` — the README's "run it" command: three nodes on 127.0.0.1 in a throw-away dev
 * realm; a message published on one node reaches a subscriber on another, a queue group shares
 * work, an RPC crosses nodes. `macula demo quic` shows the QUIC engine alone: two endpoints
 * exchanging data over lib/quic.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type Client, connect } from "../../lib/client/mod.ts";
import { makeCa, tlsFor } from "../../lib/identity/mod.ts";
import { RpcError } from "../../lib/messaging/mod.ts";
import { Node } from "../../lib/node/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";

function mebibytes(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw new InvalidArgumentError("give a whole number of MiB from 1 to 4096");
  }
  return n;
}

const line = (s: string) => process.stdout.write(`${s}\n`);
const ms = (t0: number) => `${(performance.now() - t0).toFixed(1)} ms`;

/** Fails the demo with what was expected and what happened. */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`demo: ${what}`);
}

/** Waits for `p`, failing the demo after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`demo: ${what} did not happen within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** The three-node demo. Throws when something did not check out. */
export async function runMeshDemo(say: (s: string) => void = line): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "macula-demo-"));
  const nodes: Node[] = [];
  const clients: Client[] = [];
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  try {
    let t0 = performance.now();
    const start = async (name: string) => {
      const node = await Node.start({
        dataDir: join(dir, name),
        devCaDir: nodes[0]?.caDir ?? undefined,
        listen: { host: "127.0.0.1", port: 0 },
        join: nodes.map((n) => ({ host: "127.0.0.1", port: n.endpoint.address.port })),
      });
      nodes.push(node);
      return node;
    };
    const [a, b, c] = [await start("a"), await start("b"), await start("c")];
    await within(Promise.all(nodes.map((n) => n.waitForRoutes(2))), 10_000, "the mesh");
    say(
      `1. three nodes up in a throw-away dev realm (one CA, mutual TLS), fully meshed in ${
        ms(t0)
      }:`,
    );
    for (const [name, n] of [["A", a], ["B", b], ["C", c]] as const) {
      say(`     node ${name}  ${n.url}  id ${n.nodeId.slice(0, 16)}…`);
    }
    const creds = a.credsDir!;
    const attach = async (n: Node) => {
      const cl = await connect({ url: n.url, creds });
      clients.push(cl);
      return cl;
    };
    const ca = await attach(a);
    const cb = await attach(b);
    const cc = await attach(c);

    // Pub/sub across nodes.
    const sub = cc.subscribe("demo.greetings.*");
    await cc.flush();
    t0 = performance.now();
    ca.publish("demo.greetings.en", "hello from node A");
    const it = sub[Symbol.asyncIterator]();
    const first = await within(it.next(), 5000, "the greeting's delivery");
    check(!first.done && first.value.text() === "hello from node A", "the greeting arrived intact");
    say(
      `2. published on node A, received on node C through 'demo.greetings.*': ` +
        `[${first.value.topic}] ${first.value.text()} (${ms(t0)})`,
    );

    // A queue group: each job to exactly one worker. A plain marker published after the jobs
    // arrives after them on each connection, so then every worker has all of its jobs.
    const w1 = cb.subscribe("demo.jobs", { queue: "workers" });
    const w2 = cc.subscribe("demo.jobs", { queue: "workers" });
    const ends = [cb.subscribe("demo.jobs-end"), cc.subscribe("demo.jobs-end")];
    await Promise.all([cb.flush(), cc.flush()]);
    const jobs = 20;
    for (let i = 0; i < jobs; i++) ca.publish("demo.jobs", `job ${i}`);
    ca.publish("demo.jobs-end", "");
    await within(
      Promise.all(ends.map((e) => e[Symbol.asyncIterator]().next())),
      5000,
      "the jobs' delivery",
    );
    const done = new Set<string>();
    const counts = [w1, w2].map((w) => {
      let n = 0;
      for (let m = w.buffer.shift(); m; m = w.buffer.shift(), n++) {
        check(!done.has(m.text()), `${m.text()} went to one worker only`);
        done.add(m.text());
      }
      return n;
    });
    check(done.size === jobs, `all ${jobs} jobs were delivered (got ${done.size})`);
    say(
      `3. ${jobs} jobs published on node A to queue group 'workers': each went to one worker ` +
        `(node B took ${counts[0]}, node C took ${counts[1]})`,
    );

    // RPC across nodes.
    const reg = cb.serve("demo.math.add", (p) => {
      const { x, y } = JSON.parse(dec.decode(p)) as { x: number; y: number };
      return enc.encode(JSON.stringify({ sum: x + y, servedBy: "B" }));
    });
    await reg.ready;
    t0 = performance.now();
    const answer = await ca.callJson<{ sum: number; servedBy: string }>("demo.math.add", {
      x: 2,
      y: 40,
    });
    check(answer.sum === 42, `2 + 40 = 42 (got ${answer.sum})`);
    say(
      `4. node A called 'demo.math.add' {x: 2, y: 40}: node ${answer.servedBy} answered ${answer.sum} (${
        ms(t0)
      })`,
    );
    try {
      await ca.call("demo.nobody.home", "", { timeoutMs: 2000 });
      check(false, "a call with no provider fails");
    } catch (e) {
      check(e instanceof RpcError && e.code === "no_provider", `no_provider (got ${e})`);
      say(`5. a call nobody serves fails fast with a code: ${(e as Error).message}`);
    }
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(nodes.map((n) => n.stop("demo done")));
    await rm(dir, { recursive: true, force: true });
  }
  say(`6. clients closed, nodes drained and stopped. Run it yourself: macula docs quickstart`);
}

/** Runs the QUIC demo; resolves with what a script might want to know. */
export async function runDemo(mib: number, say: (s: string) => void = line) {
  const ca = await makeCa("ed25519", "macula-demo-ca");
  say(`1. made a throw-away Ed25519 CA in memory ("${ca.cert.subject}")`);
  const alpha = await QuicEndpoint.bind({
    host: "127.0.0.1",
    tls: await tlsFor(ca, { name: "alpha" }),
  });
  const beta = await QuicEndpoint.bind({
    host: "127.0.0.1",
    tls: await tlsFor(ca, { name: "beta" }),
  });
  try {
    say(
      `2. alpha listens on udp/${alpha.address.port}, beta on udp/${beta.address.port} (127.0.0.1)`,
    );
    // alpha answers: echo on every bidirectional stream, and echo datagrams.
    void (async () => {
      for await (const conn of alpha) {
        void (async () => {
          for await (const d of conn.datagrams()) conn.sendDatagram(d);
        })();
        void (async () => {
          for await (const s of conn.streams()) {
            void (async () => {
              const h = createHash("sha256");
              let n = 0;
              for await (const c of s) {
                h.update(c);
                n += c.length;
                if (n <= 1024) await s.write(c); // small messages: echo; bulk: digest only
              }
              await s.end(n > 1024 ? new TextEncoder().encode(h.digest("hex")) : undefined);
            })().catch(() => {});
          }
        })();
      }
    })();

    let t0 = performance.now();
    const conn = await beta.connect(alpha.address);
    const peer = new X509Certificate(conn.peerCertificates[0]!);
    say(
      `3. beta dialed alpha: mutual TLS 1.3, ALPN ${conn.alpn}, peer "${peer.subject}", in ${
        ms(t0)
      }`,
    );

    const rtts: number[] = [];
    const s = await conn.openStream();
    for (let i = 0; i < 5; i++) {
      const msg = new TextEncoder().encode(`hello #${i}`);
      t0 = performance.now();
      await s.write(msg);
      let got = 0;
      while (got < msg.length) got += (await s.read())?.length ?? Infinity;
      rtts.push(performance.now() - t0);
    }
    await s.end();
    say(
      `4. 5 messages echoed on one stream, round trips ${
        rtts.map((r) => `${(r * 1000).toFixed(0)} µs`).join(", ")
      }`,
    );

    const bytes = mib * 1024 * 1024;
    const chunk = new Uint8Array(256 * 1024).map((_, i) => (i * 31) & 0xff);
    const bulk = await conn.openStream();
    const mine = createHash("sha256");
    t0 = performance.now();
    const digest = bulk.readAll();
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
      mine.update(part);
      await bulk.write(part);
    }
    await bulk.end();
    const theirs = new TextDecoder().decode(await digest);
    const secs = (performance.now() - t0) / 1000;
    const ours = mine.digest("hex");
    if (theirs !== ours) {
      throw new Error(`bulk transfer corrupted: sent ${ours}, alpha saw ${theirs}`);
    }
    say(
      `5. ${mib} MiB sent on one stream in ${secs.toFixed(2)} s (${
        (mib / secs).toFixed(0)
      } MiB/s), SHA-256 matches`,
    );

    t0 = performance.now();
    conn.sendDatagram(new TextEncoder().encode("datagram"));
    const back = await conn.receiveDatagram();
    say(`6. a QUIC datagram went there and back in ${ms(t0)} (${back?.length ?? 0} bytes)`);

    const st = conn.stats();
    say(
      `7. stats: ${st.packetsSent} packets sent, ${st.packetsReceived} received, ${st.packetsLost} lost, ` +
        `cwnd ${st.cwnd} B` +
        (st.packetsLost > 0
          ? " (losses: with both ends in one process the kernel drops packets while the process " +
            "is busy; QUIC resent them)"
          : ""),
    );
    const closing = conn.close(0, "demo done");
    await closing;
    say(
      `8. closed gracefully ("demo done"). Next: 'macula demo' runs three nodes with pub/sub and RPC.`,
    );
    return { mib, seconds: secs, rttMicros: rtts.map((r) => r * 1000), sha256: ours };
  } finally {
    await beta.close();
    await alpha.close();
  }
}

/** Builds the `demo` command. */
export function demoCommand() {
  const demo = new Command("demo")
    .description("run a local demo: three nodes, pub/sub and RPC across them, on 127.0.0.1")
    .addHelpText(
      "after",
      `
Starts three nodes on 127.0.0.1 (ports chosen by the kernel) in a throw-away dev realm under
the system's temp directory, meshes them, and shows a message published on node A reaching a
subscriber on node C, a queue group sharing jobs between nodes B and C, and an RPC from node A
served on node B. Nothing is left behind.

Examples:
  $ macula demo              the mesh demo
  $ macula demo quic         the QUIC engine alone: two endpoints, mutual TLS, a bulk transfer

Exit codes: 0 everything checked out, 1 a check failed (the line says which), 2 usage error.`,
    )
    .action(async () => {
      await runMeshDemo();
    });
  demo.addCommand(
    new Command("quic")
      .description("two QUIC endpoints exchanging data on 127.0.0.1 (the transport alone)")
      .option("--mib <n>", "how many MiB the bulk transfer sends", mebibytes, 64)
      .addHelpText(
        "after",
        `
Makes a throw-away CA in memory, starts two endpoints on 127.0.0.1 (ports chosen by the
kernel), and has them do a mutual-TLS handshake, echo messages, move a bulk transfer checked
by SHA-256, and exchange a datagram.

Examples:
  $ macula demo quic
  $ macula demo quic --mib 256

Exit codes: 0 everything checked out, 1 a check failed (the line says which), 2 usage error.`,
      )
      .action(async (opts) => {
        await runDemo(opts.mib);
      }),
  );
  return demo;
}
