/**
 * The CA passphrase prompt, on a real pseudo-terminal (`script` from util-linux runs the CLI on
 * one; the test types into it): the passphrase is not echoed and is asked twice to set it;
 * Ctrl-C at either prompt, or a SIGINT while it waits, exits 130 and writes nothing; Ctrl-D and
 * a mismatch exit 1. The output compared is the terminal's (stdout and stderr together).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { Proc } from "../helpers/proc.ts";
import { run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const PASS = "a long enough passphrase";
/** `script` is in bsdutils, an Essential package of every Debian: never skipped. */
const SCRIPT = Bun.which("script") ?? "script (bsdutils) is missing";
let dir = "";
let home = ""; // not dir: Bun may leave a cache folder in $HOME

const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** `macula certs ...args` on a pseudo-terminal; `type` writes to it as a keyboard would. */
function onTerminal(cwd: string, args: string[]) {
  const command = `exec ${[process.execPath, MAIN, "certs", ...args].map(shq).join(" ")}`;
  const p = Bun.spawn({
    cmd: [SCRIPT!, "-qefc", command, "/dev/null"],
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, SHELL: "/bin/sh" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  });
  const proc = new Proc(args, p as unknown as Subprocess<"pipe", "pipe", "pipe">);
  return {
    proc,
    /** What the terminal showed, with its CR LF line ends as LF. */
    screen: () => proc.out.replaceAll("\r\n", "\n"),
    type: (s: string) => {
      p.stdin.write(s);
      p.stdin.flush();
    },
    /** The CLI's own pid: script's child (`exec` leaves no shell between). */
    cliPid: () => Number(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, "utf8").trim()),
  };
}

function fresh(): string {
  return mkdtempSync(join(dir, "t-"));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "macula-certs-prompt-"));
  home = mkdtempSync(join(tmpdir(), "macula-certs-prompt-home-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

const INIT = ["ca", "init", "--realm", "acme", "--encrypt"];
const INTERRUPTED =
  "macula certs ca init: interrupted at the passphrase prompt; nothing was written\n";

describe("the passphrase prompt on a terminal", () => {
  test("Ctrl-C at the first prompt: exit 130, nothing written", async () => {
    const d = fresh();
    const t = onTerminal(d, INIT);
    await t.proc.waitFor("out", "new CA passphrase: ");
    t.type("secr\x03");
    expect(await t.proc.code()).toBe(130);
    expect(t.screen()).toBe(`new CA passphrase: \n${INTERRUPTED}`);
    expect(readdirSync(d)).toEqual([]);
  });

  test("Ctrl-C at the second prompt: exit 130, nothing written", async () => {
    const d = fresh();
    const t = onTerminal(d, INIT);
    await t.proc.waitFor("out", "new CA passphrase: ");
    t.type(`${PASS}\r`);
    await t.proc.waitFor("out", "again: ");
    t.type("\x03");
    expect(await t.proc.code()).toBe(130);
    expect(t.screen()).toBe(`new CA passphrase: \nagain: \n${INTERRUPTED}`);
    expect(readdirSync(d)).toEqual([]);
  });

  test("SIGINT while it waits: exit 130, nothing written", async () => {
    const d = fresh();
    const t = onTerminal(d, INIT);
    await t.proc.waitFor("out", "new CA passphrase: ");
    process.kill(t.cliPid(), "SIGINT");
    expect(await t.proc.code()).toBe(130);
    expect(t.screen()).toBe(`new CA passphrase: \n${INTERRUPTED}`);
    expect(readdirSync(d)).toEqual([]);
  });

  test("Ctrl-D, and passphrases that differ: exit 1, nothing written", async () => {
    const d = fresh();
    const eof = onTerminal(d, INIT);
    await eof.proc.waitFor("out", "new CA passphrase: ");
    eof.type("\x04");
    expect(await eof.proc.code()).toBe(1);
    expect(eof.screen()).toBe(
      "new CA passphrase: \nmacula certs ca init: no passphrase given (Ctrl-D at the prompt); nothing was written\n",
    );
    const differ = onTerminal(d, INIT);
    await differ.proc.waitFor("out", "new CA passphrase: ");
    differ.type(`${PASS}\r`);
    await differ.proc.waitFor("out", "again: ");
    differ.type(`${PASS}!\r`);
    expect(await differ.proc.code()).toBe(1);
    expect(differ.screen()).toBe(
      "new CA passphrase: \nagain: \nmacula certs ca init: the passphrases do not match; nothing was written\n",
    );
    expect(readdirSync(d)).toEqual([]);
  });

  test("typed twice, not echoed: an encrypted CA; issuing asks once, and Ctrl-C there is 130", async () => {
    const d = fresh();
    const init = onTerminal(d, INIT);
    await init.proc.waitFor("out", "new CA passphrase: ");
    init.type(`${PASS}\r`);
    await init.proc.waitFor("out", "again: ");
    init.type(`${PASS}\r`);
    expect(await init.proc.code()).toBe(0);
    expect(init.screen()).toStartWith(
      "new CA passphrase: \nagain: \ncreated the realm CA for acme",
    );
    expect(init.screen()).not.toContain(PASS.slice(0, 6));
    expect(readFileSync(join(d, "macula-ca", "ca.key"), "utf8")).toStartWith(
      "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    );
    const o = await run(
      ["openssl", "pkey", "-in", "macula-ca/ca.key", "-passin", `pass:${PASS}`, "-noout"],
      { cwd: d },
    );
    expect(o.code).toBe(0);

    const stop = onTerminal(d, ["issue", "--realm", "acme", "--name", "n"]);
    await stop.proc.waitFor("out", "CA passphrase: ");
    stop.type("\x03");
    expect(await stop.proc.code()).toBe(130);
    expect(stop.screen()).toBe(
      "CA passphrase: \nmacula certs issue: interrupted at the passphrase prompt; nothing was written\n",
    );
    expect(existsSync(join(d, "n.crt"))).toBe(false);

    const issue = onTerminal(d, ["issue", "--realm", "acme", "--name", "n"]);
    await issue.proc.waitFor("out", "CA passphrase: ");
    issue.type(`${PASS}\r`);
    expect(await issue.proc.code()).toBe(0);
    expect(issue.screen()).toStartWith("CA passphrase: \nissued CN=n in realm acme\n");
    expect(readdirSync(d).sort()).toEqual(["macula-ca", "n.crt", "n.key"]);
  });
});
