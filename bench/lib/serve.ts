/**
 * The life of a Bun benchmark server process (bench/quic/README.md): print the ready line, then
 * stop (run `stop`, exit 0) on SIGTERM, SIGINT or when stdin closes.
 */
import type { ReadyLine } from "../quic/protocol.ts";

export function announceAndServe(
  port: number,
  stop: () => unknown,
  /** More fields for the ready line (`ready` and `port` always win). */
  extra: Readonly<Record<string, unknown>> = {},
): void {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await stop();
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.stdin.on("end", shutdown);
  process.stdin.on("data", () => {});
  process.stdin.resume();
  const ready: ReadyLine = { ...extra, ready: true, port };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}
