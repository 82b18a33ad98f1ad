/**
 * bench/tuning's bulk sender: lib/quic on Bun, one connection, one stream of `--bytes` (the bulk
 * loop of bench/quic: 64 KiB writes, FIN, the server's 8-byte ack of the byte count, checked).
 * Then, while both sockets are still open, what the kernel says about them: each socket's drop
 * counter (/proc/net/udp), their buffer sizes (`ss`), and the kernel-wide `Udp:` counters over
 * the transfer. Prints one JSON line.
 *
 * `bun run bench/tuning/bulk-client.ts --port N --cert-dir DIR [--bytes 67108864]`
 */
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { chunkIO, endpointOptions } from "../quic/macula-io.ts";
import { describeError, parseClientArgs, runBulk } from "../quic/protocol.ts";
import { snmpDelta, socketBuffers, udpSnmp, udpSocketDrops } from "./kernel.ts";

async function main(): Promise<void> {
  const args = parseClientArgs(["--mode", "bulk", ...process.argv.slice(2)]);
  const ep = await QuicEndpoint.bind({
    host: args.host,
    acceptIncoming: false,
    ...endpointOptions(args.certDir, "client"),
  });
  const conn = await ep.connect({ host: args.host, port: args.port }, {
    serverName: args.serverName,
  });
  const { writer, reader } = chunkIO(await conn.openStream());
  const myPort = ep.address.port;
  const dropsBefore = { client: udpSocketDrops(myPort), server: udpSocketDrops(args.port) };
  const snmpBefore = udpSnmp();
  const statsBefore = conn.stats();
  const result = await runBulk(writer, reader, args, () => performance.now());
  const s = conn.stats();
  const snmp = snmpDelta(snmpBefore, udpSnmp());
  const dropsAfter = { client: udpSocketDrops(myPort), server: udpSocketDrops(args.port) };
  const diff = (a: number | null, b: number | null) => (a === null || b === null ? null : a - b);
  const out = {
    ...result,
    client: {
      packetsSent: s.packetsSent - statsBefore.packetsSent,
      packetsReceived: s.packetsReceived - statsBefore.packetsReceived,
      packetsLost: s.packetsLost - statsBefore.packetsLost,
      packetsRetransmitted: s.packetsRetransmitted - statsBefore.packetsRetransmitted,
      bytesSent: s.bytesSent - statsBefore.bytesSent,
      bytesLost: s.bytesLost - statsBefore.bytesLost,
      rttMs: s.rttMs,
      cwnd: s.cwnd,
      socketSendDropped: ep.stats.socketSendDropped,
    },
    kernel: {
      socketDrops: {
        client: diff(dropsAfter.client, dropsBefore.client),
        server: diff(dropsAfter.server, dropsBefore.server),
      },
      buffers: { client: socketBuffers(myPort), server: socketBuffers(args.port) },
      snmp,
    },
  };
  await ep.close("bench done");
  await Bun.write(Bun.stdout, `${JSON.stringify(out)}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`bulk-client: ${describeError(e)}\n`);
  process.exit(1);
}
