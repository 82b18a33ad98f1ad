/**
 * cli/commands/proc.ts, in this process: a handler's group id is forgotten as soon as the group
 * is seen to be empty, not when its SIGKILL timer would fire, so neither that timer nor the exit
 * hook can ever signal a process that reused the id.
 */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { spawn } from "node:child_process";
import process from "node:process";
import { endGroup, liveGroups, runOnce } from "../../cli/commands/proc.ts";
import { eventually, groupAlive } from "./messaging-harness.ts";

/** A grace no test waits out: whatever ends the group here, it is not the SIGKILL timer. */
const LONG_GRACE = 120_000;

const started: number[] = [];
afterEach(() => {
  for (const g of started.splice(0)) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // gone
    }
  }
});

describe("a group leaves the live set once it is gone", () => {
  test("runOnce: the leader exits, its background child dies of the SIGTERM: forgotten at once", async () => {
    const signal = new AbortController().signal;
    // The shell prints its pid (the group id) and leaves a `sleep` holding stdout.
    const reply = await runOnce(["sh", "-c", "sleep 30 & echo $$"], new Uint8Array(), {
      timeoutMs: 20_000,
      maxOutput: 1000,
      signal,
      graceMs: LONG_GRACE,
    });
    const pgid = Number(new TextDecoder().decode(reply).trim());
    started.push(pgid);
    expect(pgid).toBeGreaterThan(0);
    await eventually(`group ${pgid} gone`, () => !groupAlive(pgid));
    // Not in 120 s, when the timer would have fired: once the group was seen empty (its zombie
    // reaped, which a slow PID 1 may take a second or two over).
    await eventually(
      `group ${pgid} out of the live set`,
      () => !liveGroups().includes(pgid),
      15_000,
    );
  });

  test("runOnce: a leader exiting alone leaves nothing tracked", async () => {
    const reply = await runOnce(["sh", "-c", "echo $$"], new Uint8Array(), {
      timeoutMs: 20_000,
      maxOutput: 1000,
      signal: new AbortController().signal,
      graceMs: LONG_GRACE,
    });
    const pgid = Number(new TextDecoder().decode(reply).trim());
    expect(liveGroups()).not.toContain(pgid);
  });

  test("endGroup: onGone comes when the group is seen empty, and no SIGKILL is sent after", async () => {
    const child = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    const pgid = child.pid!;
    started.push(pgid);
    const kill = spyOn(process, "kill");
    try {
      const exited = new Promise((r) => child.once("exit", r));
      const gone = new Promise<void>((resolve) => endGroup(pgid, LONG_GRACE, resolve));
      await exited;
      let t: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        gone,
        new Promise((_, reject) => {
          t = setTimeout(() => reject(new Error("onGone did not come within 5 s")), 5000);
        }),
      ]).finally(() => clearTimeout(t));
      expect(liveGroups()).not.toContain(pgid);
      const kills = kill.mock.calls.filter(([pid, sig]) => pid === -pgid && sig === "SIGKILL");
      expect(kills).toEqual([]);
    } finally {
      kill.mockRestore();
    }
  });
});
