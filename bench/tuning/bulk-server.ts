/**
 * bench/tuning's bulk receiver: lib/quic on Bun (the `macula` system of bench/quic, same
 * options and stream loop), one process. Its UDP socket is made under whatever
 * `net.core.rmem_default` / `wmem_default` the bench set before starting it. On stop it prints
 * one more stdout line: the receiving connection's counters.
 *
 * `bun run bench/tuning/bulk-server.ts --cert-dir DIR [--host 127.0.0.1] [--port 0]`
 */
import type { QuicConnection } from "../../lib/quic/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { chunkIO, endpointOptions } from "../quic/macula-io.ts";
import { describeError, parseServerArgs, serveStream } from "../quic/protocol.ts";
import { announceAndServe } from "../lib/serve.ts";

const args = parseServerArgs(["--mode", "bulk", ...process.argv.slice(2)]);
const ep = await QuicEndpoint.bind({
  host: args.host,
  port: args.port,
  ...endpointOptions(args.certDir, "server"),
});
let last: QuicConnection | undefined;

void (async () => {
  for await (const conn of ep) {
    last = conn;
    void (async () => {
      for await (const s of conn.streams()) {
        const { writer, reader } = chunkIO(s);
        serveStream("bulk", writer, reader).catch((e) =>
          process.stderr.write(`bulk-server: stream: ${describeError(e)}\n`)
        );
      }
    })();
  }
})();

announceAndServe(ep.address.port, async () => {
  const s = last?.stats();
  process.stdout.write(
    `${
      JSON.stringify({
        server: s
          ? {
            packetsReceived: s.packetsReceived,
            packetsSent: s.packetsSent,
            packetsLost: s.packetsLost,
            bytesReceived: s.bytesReceived,
          }
          : null,
        endpoint: ep.stats,
      })
    }\n`,
  );
  await ep.close("bench done");
});
