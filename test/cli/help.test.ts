/**
 * The help is self-contained: every command a user can run shows examples and its exit codes,
 * and points only at what ships in the binary (`macula docs <page>`, never a file of the source
 * tree). `macula docs` holds every page of docs/.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommandUnknownOpts } from "@commander-js/extra-typings";
import { PAGES, readable, titleOf } from "../../cli/commands/docs.ts";
import { buildProgram } from "../../cli/main.ts";
import { run } from "../helpers/run.ts";

const ROOT = join(import.meta.dir, "../..");
const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

/** Every command that runs something (leaves, and groups with an action), with its help text. */
function commands(): { path: string; help: string }[] {
  const out: { path: string; help: string }[] = [];
  const walk = (c: CommandUnknownOpts, path: string) => {
    // deno-lint-ignore no-explicit-any
    const internal = c as any;
    if (internal._hidden) return;
    const subs = c.commands.filter((s) => !(s as unknown as { _hidden: boolean })._hidden);
    if (subs.length === 0 || internal._actionHandler) {
      let help = "";
      c.configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => (help += s) });
      c.outputHelp();
      out.push({ path, help });
    }
    for (const s of subs) walk(s, `${path} ${s.name()}`);
  };
  for (const c of buildProgram().commands) walk(c, `macula ${c.name()}`);
  return out;
}

describe("the help of every command", () => {
  const all = commands();
  test("covers the commands (a walk that finds nothing proves nothing)", () => {
    expect(all.map((c) => c.path)).toContain("macula node up");
    expect(all.length).toBeGreaterThan(25);
  });
  for (const { path, help } of all) {
    test(`${path}: examples, exit codes, and only pages that ship`, () => {
      expect(help).toMatch(/^Examples?:$/m);
      expect(help).toContain("Exit codes:");
      expect(help).not.toMatch(/docs\/[\w-]+\.md/);
      for (const m of help.matchAll(/macula docs ([\w-]+)/g)) expect(PAGES).toHaveProperty(m[1]!);
    });
  }
});

describe("one convention for every shared flag", () => {
  const options: { path: string; flags: string; description: string }[] = [];
  const walk = (c: CommandUnknownOpts, path: string) => {
    for (const o of c.options) options.push({ path, flags: o.flags, description: o.description });
    for (const s of c.commands) walk(s, `${path} ${s.name()}`);
  };
  walk(buildProgram(), "macula");
  const named = (long: string) => options.filter((o) => new RegExp(`--${long}\\b`).test(o.flags));

  test("counts are -n, --count <n>; -c means nothing", () => {
    expect(named("count").length).toBeGreaterThan(2);
    for (const o of named("count")) expect(o.flags).toBe("-n, --count <n>");
    expect(options.filter((o) => /^-c,/.test(o.flags))).toEqual([]);
  });

  test("deadlines are --timeout <ms>", () => {
    expect(named("timeout").length).toBeGreaterThan(4);
    for (const o of named("timeout")) expect(o.flags).toMatch(/^(-t, )?--timeout <ms>$/);
  });

  test("addresses to bind are -l, --listen <host:port> (no --bind, no --host)", () => {
    expect(named("listen").map((o) => o.path)).toEqual(
      expect.arrayContaining(["macula node up", "macula netcheck", "macula stun serve"]),
    );
    for (const o of named("listen")) expect(o.flags).toBe("-l, --listen <host:port>");
    expect([...named("bind"), ...named("host")]).toEqual([]);
  });

  test("--json always means JSON output", () => {
    expect(named("json").length).toBeGreaterThan(10);
    for (const o of named("json")) {
      expect(o.flags).toBe("--json");
      expect(o.description).toMatch(/^print|JSON/);
      expect(o.description).not.toMatch(/check|valid/i);
    }
  });
});

describe("macula docs", () => {
  test("holds every page of docs/, as written", () => {
    const files = readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md"));
    expect(Object.keys(PAGES).sort()).toEqual(files.map((f) => f.slice(0, -3)).sort());
    for (const f of files) {
      expect(PAGES[f.slice(0, -3)]).toBe(readFileSync(join(ROOT, "docs", f), "utf8"));
    }
  });

  test("lists the pages with their titles; prints one; an unknown one is a usage error", async () => {
    const list = await run([process.execPath, MAIN, "docs"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^quickstart +Quick start: three nodes by hand$/m);
    expect(list.stdout.trim().split("\n").length).toBe(Object.keys(PAGES).length + 2);
    const page = await run([process.execPath, MAIN, "docs", "quickstart"]);
    expect(page).toEqual({ code: 0, stdout: readable(PAGES.quickstart!), stderr: "" });
    // The test directives are for test/docs, not for readers; everything else stays.
    expect(PAGES.quickstart).toContain("<!-- step:");
    expect(page.stdout).not.toContain("<!--");
    const strip = (t: string) => t.split("\n").filter((l) => l !== "" && !l.startsWith("<!-- "));
    expect(strip(page.stdout)).toEqual(strip(PAGES.quickstart!));
    expect(titleOf("dht")).toStartWith("The DHT");
    const bad = await run([process.execPath, MAIN, "docs", "nope"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith(`macula docs: no page named "nope" ('macula docs' lists them: `);
  });
});
