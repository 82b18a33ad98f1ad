/**
 * Baseline `deno-quic`, server end: Deno's built-in QUIC (quinn), `Deno.QuicEndpoint.listen`.
 * Run: deno run --no-config --unstable-net -A bench/quic/deno-server.ts --mode ... --cert-dir ...
 * Protocol: bench/quic/README.md.
 */
import {
  deno,
  type DenoApi,
  type QuicBidirectionalStream,
  type QuicConn,
  writeAll,
} from "./deno-api.ts";
import {
  ALPN,
  CERT_FILES,
  certPath,
  describeError,
  parseServerArgs,
  type ReadyLine,
  serveStream,
} from "./protocol.ts";

const D: DenoApi = deno();
const args = parseServerArgs(D.args);

async function fail(where: string, e: unknown): Promise<void> {
  await writeAll(D.stderr, `deno-server: ${where}: ${describeError(e)}\n`);
}

async function onStream(s: QuicBidirectionalStream): Promise<void> {
  try {
    await serveStream(args.mode, s.writable.getWriter(), s.readable.getReader());
  } catch (e) {
    await fail("stream", e);
  }
}

async function onConn(conn: QuicConn): Promise<void> {
  const streams = conn.incomingBidirectionalStreams.getReader();
  try {
    for (;;) {
      const r = await streams.read();
      if (r.done) return;
      void onStream(r.value);
    }
  } catch {
    // The client closed the connection: normal end.
  }
}

const endpoint = new D.QuicEndpoint({ hostname: args.host, port: args.port });
const listener = endpoint.listen({
  alpnProtocols: [ALPN],
  cert: await D.readTextFile(certPath(args.certDir, CERT_FILES.serverCert)),
  key: await D.readTextFile(certPath(args.certDir, CERT_FILES.serverKey)),
});

function shutdown(): never {
  try {
    listener.stop();
    endpoint.close({ closeCode: 0, reason: "bench over" });
  } catch {
    // Already closed.
  }
  D.exit(0);
}
D.addSignalListener("SIGTERM", shutdown);
D.addSignalListener("SIGINT", shutdown);
// Exit when stdin closes (the runner's other stop signal).
void (async () => {
  const r = D.stdin.readable.getReader();
  try {
    while (!(await r.read()).done) {
      // Ignore input.
    }
  } catch {
    // stdin gone.
  }
  shutdown();
})();

const ready: ReadyLine = { ready: true, port: endpoint.addr.port };
await writeAll(D.stdout, `${JSON.stringify(ready)}\n`);

for await (const incoming of listener) {
  incoming.accept().then(onConn, (e: unknown) => fail("accept", e));
}
