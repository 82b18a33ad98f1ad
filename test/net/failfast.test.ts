/**
 * A client learns within seconds that its node is gone: a node process killed outright (no
 * goodbye) leaves its clients' sessions silent, and the client's short idle timeout with a
 * keep-alive every second ends them (docs/client.md, "Reconnecting"). Real processes on
 * 127.0.0.1; the wait is bounded well under the nodes' own 30 s idle timeout.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { type ClientStatus, connect } from "../../lib/client/client.ts";
import { Proc } from "../helpers/proc.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "macula-failfast-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a client whose node is killed hears of it in seconds, and holds its publishes", async () => {
  const args = [
    "node",
    "up",
    "--ready-json",
    "--data-dir",
    join(dir, "n"),
    "--listen",
    "127.0.0.1:0",
  ];
  const up = new Proc(
    args,
    Bun.spawn({
      cmd: [process.execPath, MAIN, ...args],
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
  );
  await up.waitFor("out", "\n");
  const ready = JSON.parse(up.lines()[0]!) as { url: string; credsDir: string };
  const seen: ClientStatus[] = [];
  let lost: () => void = () => {};
  const reconnecting = new Promise<void>((r) => (lost = r));
  const c = await connect({
    url: ready.url,
    creds: ready.credsDir,
    onStatus: (s) => {
      seen.push(s);
      if (s === "reconnecting") lost();
    },
  });
  try {
    await c.flush();
    up.p.kill("SIGKILL");
    await up.code();
    // The nodes' idle timeout is 30 s; the client's own (6 s) must end the session first.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      reconnecting,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still ${c.status} after 15 s`)), 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(seen).toContain("reconnecting");
    expect(c.status).toBe("reconnecting");
    // While reconnecting, publishes are held (bounded), not accepted into a dead session.
    expect(() => c.publish("x.y", "held")).not.toThrow();
  } finally {
    await c.close();
  }
}, 30_000);
