/**
 * The node's log (lib/util/log.ts): levels, the two formats, and repeats of one cause written
 * once per interval and summed up, never lost.
 */
import { describe, expect, test } from "bun:test";
import { lineLog, Logger, type LoggerOptions } from "../../lib/util/mod.ts";

const T = new Date("2026-12-07T10:00:00.000Z");

function logger(o: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  const log = new Logger({ write: (l) => lines.push(l), now: () => T, ...o });
  return { log, lines };
}

describe("Logger", () => {
  test("text: time, level, text; below the level nothing", () => {
    const { log, lines } = logger();
    log.debug("x.debug", "not shown");
    log.info("route.up", "route up: n1");
    log.error("router.error", "router: boom");
    expect(lines).toEqual([
      "2026-12-07T10:00:00.000Z INFO  route up: n1\n",
      "2026-12-07T10:00:00.000Z ERROR router: boom\n",
    ]);
    expect(log.stats).toEqual({ written: 2, suppressed: 1 });
    log.level = "debug"; // as SIGHUP does
    log.debug("x.debug", "shown now");
    expect(lines[2]).toBe("2026-12-07T10:00:00.000Z DEBUG shown now\n");
    log.level = "error";
    log.warn("w", "a warning below the level");
    expect(lines).toHaveLength(3);
    log.close();
  });

  test("json: one object per line with time, level, context, event, msg and fields", () => {
    const { log, lines } = logger({ format: "json", context: { realm: "acme" } });
    log.info("route.up", "route up: n1", { peer: "abc", rtt: 1.5 });
    log.setContext({ node: "n0" });
    log.info("node.stopped", "stopped");
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        time: "2026-12-07T10:00:00.000Z",
        level: "info",
        realm: "acme",
        event: "route.up",
        msg: "route up: n1",
        peer: "abc",
        rtt: 1.5,
      },
      {
        time: "2026-12-07T10:00:00.000Z",
        level: "info",
        realm: "acme",
        node: "n0",
        event: "node.stopped",
        msg: "stopped",
      },
    ]);
    expect(lines.every((l) => l.endsWith("}\n") && !l.slice(0, -1).includes("\n"))).toBe(true);
    log.close();
  });

  test("a warning repeated for one cause: the first at once, the rest counted into one line", () => {
    const { log, lines } = logger({ format: "json" });
    for (let i = 0; i < 50; i++) {
      log.warn("peer.refused", `refused a peer at 10.0.0.${i}:4433: unknown CA`, {
        cause: "unknown-ca",
      });
    }
    log.warn("peer.refused", "refused a peer: expired", { cause: "expired" });
    expect(lines.map((l) => JSON.parse(l).cause)).toEqual(["unknown-ca", "expired"]);
    log.close(); // the interval ends: the summary
    const summary = JSON.parse(lines[2]!);
    expect(summary).toMatchObject({ event: "peer.refused", cause: "unknown-ca", repeated: 49 });
    expect(summary.msg).toBe(
      "refused a peer at 10.0.0.0:4433: unknown CA (and 49 more like it in the last 10 s)",
    );
    expect(lines).toHaveLength(3); // "expired" did not repeat: no summary for it
    expect(log.stats).toEqual({ written: 3, suppressed: 49 });
    // A new interval: the cause is written at once again.
    log.warn("peer.refused", "again", { cause: "unknown-ca" });
    expect(JSON.parse(lines[3]!).msg).toBe("again");
    log.close();
  });

  test("without a cause, the text is the cause; info is never rate-limited", () => {
    const { log, lines } = logger();
    log.warn("seed.failed", "join quic://a: timeout");
    log.warn("seed.failed", "join quic://a: timeout");
    log.warn("seed.failed", "join quic://b: timeout");
    log.info("route.up", "up");
    log.info("route.up", "up");
    expect(lines.map((l) => l.slice(25))).toEqual([
      "WARN  join quic://a: timeout\n",
      "WARN  join quic://b: timeout\n",
      "INFO  up\n",
      "INFO  up\n",
    ]);
    log.close();
    expect(lines[4]!.slice(25)).toBe(
      "WARN  join quic://a: timeout (and 1 more like it in the last 10 s)\n",
    );
  });

  test("causes are bounded: past maxCauses, new ones share one bucket", () => {
    const { log, lines } = logger({ maxCauses: 3 });
    for (let i = 0; i < 10; i++) log.warn("e", `cause ${i}`, { cause: `c${i}` });
    // c0..c2 tracked; c3 opens the shared bucket (written), c4..c9 are counted in it.
    expect(lines).toHaveLength(4);
    log.close();
    expect(lines[4]!.slice(25)).toBe(
      "WARN  cause 3 (and 6 more like other warnings (too many causes to tell apart) in the last 10 s)\n",
    );
  });

  test("repeatIntervalMs 0 writes every line", () => {
    const { log, lines } = logger({ repeatIntervalMs: 0 });
    for (let i = 0; i < 3; i++) log.warn("e", "same");
    expect(lines).toHaveLength(3);
  });

  test("lineLog hands the text of info and above to a function", () => {
    const got: string[] = [];
    const log = lineLog((l) => got.push(l));
    log.debug("d", "no");
    log.info("i", "one");
    log.warn("w", "two");
    log.error("e", "three");
    expect(got).toEqual(["one", "two", "three"]);
  });
});
