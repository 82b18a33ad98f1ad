/**
 * `macula` client end: lib/quic on Bun. One connection, one bidirectional stream, the shared
 * harness loops (ping-pong with one message in flight, or bulk).
 */
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { chunkIO, endpointOptions } from "./macula-io.ts";
import {
  type ClientResult,
  describeError,
  parseClientArgs,
  runBulk,
  runPingpong,
} from "./protocol.ts";

async function main(): Promise<void> {
  const args = parseClientArgs(process.argv.slice(2));
  const ep = await QuicEndpoint.bind({
    host: args.host,
    acceptIncoming: false,
    ...endpointOptions(args.certDir, "client"),
  });
  const conn = await ep.connect({ host: args.host, port: args.port }, {
    serverName: args.serverName,
  });
  const { writer, reader } = chunkIO(await conn.openStream());
  const now = () => performance.now();
  const result: ClientResult = args.mode === "pingpong"
    ? await runPingpong(writer, reader, args, now)
    : await runBulk(writer, reader, args, now);
  await ep.close("bench done");
  await Bun.write(Bun.stdout, `${JSON.stringify(result)}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`macula-client: ${describeError(e)}\n`);
  process.exit(1);
}
