/**
 * `macula` server end: lib/quic on Bun, serving every stream with the shared harness loop.
 * Protocol: bench/quic/README.md.
 */
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { chunkIO, endpointOptions } from "./macula-io.ts";
import { describeError, parseServerArgs, type ReadyLine, serveStream } from "./protocol.ts";

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

const shutdown = async () => {
  await ep.close("bench done");
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdin.on("end", shutdown);
process.stdin.on("data", () => {});
process.stdin.resume();

const ready: ReadyLine = { ready: true, port: ep.address.port };
process.stdout.write(`${JSON.stringify(ready)}\n`);
