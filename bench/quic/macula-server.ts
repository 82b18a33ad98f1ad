/**
 * `macula` server end: lib/quic on Bun, serving every stream with the shared harness loop.
 * Protocol: bench/quic/README.md.
 */
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { chunkIO, endpointOptions } from "./macula-io.ts";
import { describeError, parseServerArgs, serveStream } from "./protocol.ts";
import { announceAndServe } from "../lib/serve.ts";

const args = parseServerArgs(process.argv.slice(2));
const ep = await QuicEndpoint.bind({
  host: args.host,
  port: args.port,
  ...endpointOptions(args.certDir, "server"),
});

void (async () => {
  for await (const conn of ep) {
    void (async () => {
      for await (const s of conn.streams()) {
        const { writer, reader } = chunkIO(s);
        serveStream(args.mode, writer, reader).catch((e) =>
          process.stderr.write(`macula-server: stream: ${describeError(e)}\n`)
        );
      }
    })();
  }
})();

announceAndServe(ep.address.port, () => ep.close("bench done"));
