/**
 * docs/certificates.md, "Your own realm in five commands", run as written: the commands are read
 * from the page's code block and run in an empty folder (`macula` is the CLI from source; a line
 * ending in `&` is a background process, waited for by its banner). The test also subscribes
 * before the last command, to see the message arrive. Real processes on 127.0.0.1.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { Proc } from "../helpers/proc.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const DOC = fileURLToPath(new URL("../../docs/certificates.md", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "macula-five-"));
const procs: Proc[] = [];
afterAll(async () => {
  for (const p of procs) p.p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.code().catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
});

/** The lines of the first `sh` block under the heading. */
function commands(): string[] {
  const md = readFileSync(DOC, "utf8");
  const at = md.indexOf("## Your own realm in five commands");
  expect(at).toBeGreaterThan(-1);
  const block = /```sh\n([\s\S]*?)```/.exec(md.slice(at))![1]!;
  return block.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

/** Splits a command line as sh would for these (words, '…' and "…" quotes). */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m; (m = re.exec(line)) !== null;) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

function start(args: string[]): Proc {
  const p = new Proc(
    args,
    Bun.spawn({
      cmd: [process.execPath, MAIN, ...args],
      cwd: dir,
      env: { ...process.env, HOME: dir, MACULA_URL: "", MACULA_CREDS: "" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
  );
  procs.push(p);
  return p;
}

test("your own realm in five commands, as docs/certificates.md writes them", async () => {
  const lines = commands();
  expect(lines).toHaveLength(5);
  for (const [i, line] of lines.entries()) {
    const w = words(line);
    expect(w[0]).toBe("macula");
    const background = w.at(-1) === "&";
    const args = w.slice(1, background ? -1 : undefined);
    if (i === lines.length - 1) {
      // Before the last command: a subscriber, to see the message arrive.
      const sub = start(["sub", "hello.>", "--creds", "alice", "--count", "1"]);
      await sub.waitFor("err", "subscribed");
      const p = start(args);
      expect(await p.code()).toBe(0);
      expect(await sub.code()).toBe(0);
      expect(sub.out).toContain("hi from alice");
      continue;
    }
    const p = start(args);
    if (background) {
      await p.waitFor("out", "is up");
      continue;
    }
    const code = await p.code();
    expect([line, code, p.err]).toEqual([line, 0, p.err]);
  }
}, 90_000);
