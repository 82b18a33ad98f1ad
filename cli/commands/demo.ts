/**
 * `macula demo` — two QUIC endpoints on 127.0.0.1 exchanging data over lib/quic, with a throw-away
 * CA made in memory: the README's "run it" command until a mesh node exists.
 */
import { Command, InvalidArgumentError } from "@commander-js/extra-typings";
import { createHash, X509Certificate } from "node:crypto";
import process from "node:process";
import { makeCa, tlsFor } from "../../lib/identity/devca.ts";
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

/** Runs the demo; resolves with what a script might want to know. */
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
    say(`8. closed gracefully ("demo done"). Next: run 'macula --help' to see what is coming.`);
    return { mib, seconds: secs, rttMicros: rtts.map((r) => r * 1000), sha256: ours };
  } finally {
    await beta.close();
    await alpha.close();
  }
}

/** Builds the `demo` command. */
export function demoCommand() {
  return new Command("demo")
    .description("run a local demo: two QUIC endpoints exchanging data on 127.0.0.1")
    .option("--mib <n>", "how many MiB the bulk transfer sends", mebibytes, 64)
    .addHelpText(
      "after",
      `
Makes a throw-away CA in memory, starts two endpoints on 127.0.0.1 (ports chosen by the
kernel), and has them do a mutual-TLS handshake, echo messages, move a bulk transfer checked
by SHA-256, and exchange a datagram. Exits 0 when everything checked out, 1 otherwise.

Example:
  $ macula demo --mib 256`,
    )
    .action(async (opts) => {
      await runDemo(opts.mib);
    });
}
