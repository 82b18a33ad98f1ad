/**
 * Saved contexts: the config directory, the store (add, use, list, remove, --force, corrupt
 * files, atomic writes) and the precedence of resolveTarget. Every test uses its own temp
 * config directory, never the real home.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  configDir,
  ContextError,
  CONTEXTS_FILE,
  ContextStore,
  resolveTarget,
} from "../../lib/client/contexts.ts";
import { UrlError } from "../../lib/peer/url.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "macula-contexts-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh environment whose config directory is a new temp folder (not created yet). */
function freshEnv(): { env: Record<string, string>; dir: string; cwd: string } {
  const root = tmp();
  const dir = join(root, "config", "macula");
  return { env: { MACULA_CONFIG_DIR: dir, HOME: join(root, "home") }, dir, cwd: root };
}

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("configDir", () => {
  test("MACULA_CONFIG_DIR, else XDG_CONFIG_HOME/macula, else ~/.config/macula", () => {
    const all = { MACULA_CONFIG_DIR: "/a/m", XDG_CONFIG_HOME: "/x", HOME: "/h" };
    expect(configDir(all)).toBe("/a/m");
    expect(configDir({ ...all, MACULA_CONFIG_DIR: undefined })).toBe("/x/macula");
    expect(configDir({ ...all, MACULA_CONFIG_DIR: "" })).toBe("/x/macula");
    expect(configDir({ HOME: "/h" })).toBe("/h/.config/macula");
    expect(configDir({ HOME: "/h", XDG_CONFIG_HOME: "" })).toBe("/h/.config/macula");
  });

  test("relative directories are resolved against cwd", () => {
    expect(configDir({ MACULA_CONFIG_DIR: "conf" }, "/w")).toBe("/w/conf");
    expect(configDir({ XDG_CONFIG_HOME: "xdg" }, "/w")).toBe("/w/xdg/macula");
  });
});

describe("ContextStore", () => {
  test("a missing file is an empty store, and nothing is written by reading", () => {
    const { env, dir } = freshEnv();
    const store = ContextStore.open(env);
    expect(store.path).toBe(join(dir, CONTEXTS_FILE));
    expect(store.list()).toEqual([]);
    expect(store.current()).toBeNull();
    expect(() => statSync(dir)).toThrow();
  });

  test("add, use, list, get, remove; the file has the documented shape", () => {
    const { env, dir, cwd } = freshEnv();
    const store = ContextStore.open(env);
    store.add(
      {
        name: "acme",
        server: "quic://Edge-1.acme.example",
        creds: "creds/acme",
        description: "prod",
      },
      { cwd },
    );
    store.add({ name: "local", server: "quic://[::1]:7000" }, { cwd });
    expect(store.current()).toBeNull();
    expect(store.use("acme").name).toBe("acme");

    const again = ContextStore.open(env);
    expect(again.list()).toEqual([
      {
        name: "acme",
        server: "quic://edge-1.acme.example:4433",
        creds: join(cwd, "creds/acme"),
        description: "prod",
      },
      { name: "local", server: "quic://[::1]:7000" },
    ]);
    expect(again.current()?.name).toBe("acme");
    expect(again.get("local").server).toBe("quic://[::1]:7000");
    expect(JSON.parse(readFileSync(join(dir, CONTEXTS_FILE), "utf8"))).toEqual({
      version: 1,
      current: "acme",
      contexts: {
        acme: {
          server: "quic://edge-1.acme.example:4433",
          creds: join(cwd, "creds/acme"),
          description: "prod",
        },
        local: { server: "quic://[::1]:7000" },
      },
    });

    expect(again.remove("local")).toEqual({
      context: { name: "local", server: "quic://[::1]:7000" },
      wasCurrent: false,
    });
    expect(again.current()?.name).toBe("acme");
    expect(again.remove("acme").wasCurrent).toBe(true);
    expect(again.current()).toBeNull();
    const last = ContextStore.open(env);
    expect(last.list()).toEqual([]);
    expect(last.current()).toBeNull();
  });

  test("list is sorted by name, and returns copies", () => {
    const { env } = freshEnv();
    const store = ContextStore.open(env);
    for (const n of ["b", "A", "a", "c.1"]) store.add({ name: n, server: "quic://x" });
    expect(store.list().map((c) => c.name)).toEqual(["A", "a", "b", "c.1"]);
    store.list()[0]!.server = "changed";
    expect(store.get("A").server).toBe("quic://x:4433");
  });

  test("an existing name is replaced only with force, and stays current", () => {
    const { env } = freshEnv();
    const store = ContextStore.open(env);
    store.add({ name: "acme", server: "quic://a:1", creds: "/c" });
    store.use("acme");
    const e = errorOf(() => store.add({ name: "acme", server: "quic://b:2" }));
    expect(e).toBeInstanceOf(ContextError);
    expect(e.message).toBe('context "acme" already exists (--force replaces it)');
    expect(ContextStore.open(env).get("acme").server).toBe("quic://a:1");

    store.add({ name: "acme", server: "quic://b:2" }, { force: true });
    const again = ContextStore.open(env);
    expect(again.get("acme")).toEqual({ name: "acme", server: "quic://b:2" });
    expect(again.current()?.name).toBe("acme");
  });

  test("names are checked", () => {
    const { env } = freshEnv();
    const store = ContextStore.open(env);
    for (const ok of ["a", "A-b_c.9", "x".repeat(64)]) store.add({ name: ok, server: "quic://x" });
    for (
      const [bad, problem] of [
        ["", "is empty"],
        ["x".repeat(65), "is longer than 64 characters"],
        ["a b", "may only contain"],
        ["a/b", "may only contain"],
        ["é", "may only contain"],
      ]
    ) {
      const e = errorOf(() => store.add({ name: bad!, server: "quic://x" }));
      expect(e).toBeInstanceOf(ContextError);
      expect(e.message).toStartWith(`context name ${JSON.stringify(bad)} ${problem}`);
    }
  });

  test("a bad server is refused, and nothing is written", () => {
    const { env, dir } = freshEnv();
    const store = ContextStore.open(env);
    const e = errorOf(() => store.add({ name: "x", server: "http://x:1" }));
    expect(e).toBeInstanceOf(ContextError);
    expect(e.message).toBe('server "http://x:1": scheme must be quic://');
    expect(() => statSync(dir)).toThrow();
  });

  test("unknown names are errors listing the known ones", () => {
    const { env } = freshEnv();
    const store = ContextStore.open(env);
    expect(errorOf(() => store.use("nope")).message).toBe(
      'no context named "nope" (no contexts are saved)',
    );
    store.add({ name: "b", server: "quic://x" });
    store.add({ name: "a", server: "quic://x" });
    for (
      const f of [() => store.get("nope"), () => store.use("nope"), () => store.remove("nope")]
    ) {
      const e = errorOf(f);
      expect(e).toBeInstanceOf(ContextError);
      expect(e.message).toBe('no context named "nope" (known: a, b)');
    }
  });

  test("the directory is created with mode 0700 and the file with 0600", () => {
    const { env, dir } = freshEnv();
    ContextStore.open(env).add({ name: "a", server: "quic://x" });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, CONTEXTS_FILE)).mode & 0o777).toBe(0o600);
  });

  test("writes are atomic: a temp file renamed into place, none left behind", () => {
    const { env, dir } = freshEnv();
    const store = ContextStore.open(env);
    for (let i = 0; i < 20; i++) store.add({ name: `c${i}`, server: `quic://h:${i + 1}` });
    expect(readdirSync(dir)).toEqual([CONTEXTS_FILE]);
    expect(ContextStore.open(env).list()).toHaveLength(20);
  });

  test("a failed write leaves the previous file intact and no temp file", () => {
    const { env, dir } = freshEnv();
    const store = ContextStore.open(env);
    store.add({ name: "a", server: "quic://x" });
    const before = readFileSync(join(dir, CONTEXTS_FILE), "utf8");
    // Replace the file by a non-empty directory: the rename onto it fails.
    rmSync(join(dir, CONTEXTS_FILE));
    mkdirSync(join(dir, CONTEXTS_FILE, "keep"), { recursive: true });
    expect(() => store.add({ name: "b", server: "quic://y" })).toThrow();
    expect(readdirSync(dir)).toEqual([CONTEXTS_FILE]);
    expect(store.has("b")).toBe(false); // memory follows the disk
    rmSync(join(dir, CONTEXTS_FILE), { recursive: true });
    writeFileSync(join(dir, CONTEXTS_FILE), before);
    expect(ContextStore.open(env).list().map((c) => c.name)).toEqual(["a"]);
  });

  const corrupt: [string, string, string][] = [
    ["empty", "", "the file is empty"],
    ["not JSON", "{ nope", "not valid JSON"],
    ["an array", "[]", "the top level must be a JSON object"],
    ["no version", '{"current":null,"contexts":{}}', '"version" must be 1 (got undefined)'],
    ["version 2", '{"version":2,"current":null,"contexts":{}}', '"version" must be 1 (got 2)'],
    ["unknown key", '{"version":1,"current":null,"contexts":{},"x":1}', 'unknown key "x"'],
    ["no contexts", '{"version":1,"current":null}', '"contexts" must be an object'],
    [
      "bad name",
      '{"version":1,"current":null,"contexts":{"a b":{"server":"quic://x:1"}}}',
      'contexts["a b"]: the name may only contain',
    ],
    [
      "context not an object",
      '{"version":1,"current":null,"contexts":{"a":"quic://x:1"}}',
      'contexts["a"] must be an object',
    ],
    [
      "no server",
      '{"version":1,"current":null,"contexts":{"a":{}}}',
      'contexts["a"].server must be a string',
    ],
    [
      "bad server",
      '{"version":1,"current":null,"contexts":{"a":{"server":"http://x"}}}',
      'contexts["a"].server "http://x": scheme must be quic://',
    ],
    [
      "bad creds",
      '{"version":1,"current":null,"contexts":{"a":{"server":"quic://x","creds":7}}}',
      'contexts["a"].creds must be a path',
    ],
    [
      "unknown context key",
      '{"version":1,"current":null,"contexts":{"a":{"server":"quic://x","realm":"r"}}}',
      'contexts["a"]: unknown key "realm"',
    ],
    [
      "bad current",
      '{"version":1,"current":7,"contexts":{}}',
      '"current" must be a context name or null (got 7)',
    ],
    [
      "dangling current",
      '{"version":1,"current":"gone","contexts":{}}',
      '"current" names "gone", which is not in "contexts"',
    ],
  ];
  test.each(corrupt)(
    "a corrupt file (%s) is an error naming it, never reset",
    (_, text, problem) => {
      const { env, dir } = freshEnv();
      mkdirSync(dir, { recursive: true });
      const file = join(dir, CONTEXTS_FILE);
      writeFileSync(file, text);
      const e = errorOf(() => ContextStore.open(env));
      expect(e).toBeInstanceOf(ContextError);
      expect(e.message).toStartWith(`${file}: `);
      expect(e.message).toContain(problem);
      expect(e.message).toContain("fix the file, or move it away");
      expect(readFileSync(file, "utf8")).toBe(text);
      // resolveTarget fails the same way when it needs the store...
      expect(() => resolveTarget({ env, cwd: dir })).toThrow(e.message);
      // ...and does not read it when flags decide everything.
      expect(resolveTarget({ env, cwd: dir, server: "quic://x", creds: "/c" }).url).toBe(
        "quic://x:4433",
      );
    },
  );
});

describe("resolveTarget", () => {
  /** A config dir with contexts acme (current) and lab, and cwd /w. */
  function setup() {
    const { env } = freshEnv();
    const store = ContextStore.open(env);
    store.add({ name: "acme", server: "quic://acme:1", creds: "/creds/acme" });
    store.add({ name: "lab", server: "quic://lab:2", creds: "/creds/lab" });
    store.add({ name: "bare", server: "quic://bare:3" });
    store.use("acme");
    return env;
  }
  const cwd = "/w";

  type Row = {
    flags: { server?: string; creds?: string; context?: string };
    env: Record<string, string>;
    noCurrent?: boolean;
    url: string;
    source: string;
    creds: string;
    credsSource: string;
  };
  const table: [string, Row][] = [
    ["current context", {
      flags: {},
      env: {},
      url: "quic://acme:1",
      source: "context acme",
      creds: "/creds/acme",
      credsSource: "context acme",
    }],
    ["--context beats current", {
      flags: { context: "lab" },
      env: {},
      url: "quic://lab:2",
      source: "context lab",
      creds: "/creds/lab",
      credsSource: "context lab",
    }],
    ["--context beats MACULA_URL and MACULA_CREDS (a flag beats the environment)", {
      flags: { context: "lab" },
      env: { MACULA_URL: "quic://env:5", MACULA_CREDS: "/envcreds" },
      url: "quic://lab:2",
      source: "context lab",
      creds: "/creds/lab",
      credsSource: "context lab",
    }],
    ["MACULA_URL beats the current context; creds still the context's", {
      flags: {},
      env: { MACULA_URL: "quic://env:5" },
      url: "quic://env:5",
      source: "MACULA_URL",
      creds: "/creds/acme",
      credsSource: "context acme",
    }],
    ["--server beats --context and MACULA_URL", {
      flags: { server: "quic://flag:6", context: "lab" },
      env: { MACULA_URL: "quic://env:5" },
      url: "quic://flag:6",
      source: "--server",
      creds: "/creds/lab",
      credsSource: "context lab",
    }],
    ["MACULA_CREDS beats the current context's creds (relative to cwd)", {
      flags: {},
      env: { MACULA_CREDS: "envcreds" },
      url: "quic://acme:1",
      source: "context acme",
      creds: "/w/envcreds",
      credsSource: "MACULA_CREDS",
    }],
    ["--creds beats MACULA_CREDS (relative to cwd)", {
      flags: { creds: "flagcreds" },
      env: { MACULA_CREDS: "/envcreds" },
      url: "quic://acme:1",
      source: "context acme",
      creds: "/w/flagcreds",
      credsSource: "--creds",
    }],
    ["--creds beats the --context context's creds", {
      flags: { creds: "/flagcreds", context: "lab" },
      env: { MACULA_CREDS: "/envcreds" },
      url: "quic://lab:2",
      source: "context lab",
      creds: "/flagcreds",
      credsSource: "--creds",
    }],
    ["a --context without creds: MACULA_CREDS, not the current context's", {
      flags: { context: "bare" },
      env: { MACULA_CREDS: "/envcreds" },
      url: "quic://bare:3",
      source: "context bare",
      creds: "/envcreds",
      credsSource: "MACULA_CREDS",
    }],
    ["a context without creds falls back to the default creds", {
      flags: { context: "bare" },
      env: {},
      url: "quic://bare:3",
      source: "context bare",
      creds: "/w/macula-data/client",
      credsSource: "default",
    }],
    ["no current context: defaults", {
      flags: {},
      env: {},
      noCurrent: true,
      url: "quic://127.0.0.1:4433",
      source: "default",
      creds: "/w/macula-data/client",
      credsSource: "default",
    }],
    ["no current context: MACULA_URL", {
      flags: {},
      env: { MACULA_URL: "quic://[::1]" },
      noCurrent: true,
      url: "quic://[::1]:4433",
      source: "MACULA_URL",
      creds: "/w/macula-data/client",
      credsSource: "default",
    }],
    ["empty environment variables count as unset", {
      flags: {},
      env: { MACULA_URL: "", MACULA_CREDS: "" },
      url: "quic://acme:1",
      source: "context acme",
      creds: "/creds/acme",
      credsSource: "context acme",
    }],
  ];
  test.each(table)("%s", (_, row) => {
    const env = { ...setup(), ...row.env };
    if (row.noCurrent) ContextStore.open(env).remove("acme");
    const t = resolveTarget({ ...row.flags, env, cwd });
    expect(t).toMatchObject({
      url: row.url,
      source: row.source,
      creds: row.creds,
      credsSource: row.credsSource,
    });
    expect(t.url).toBe(`quic://${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`);
  });

  test("the consulted context is reported", () => {
    const env = setup();
    expect(resolveTarget({ env, cwd }).context).toBe("acme");
    expect(resolveTarget({ env, cwd, context: "lab", server: "quic://x" }).context).toBe("lab");
    expect(resolveTarget({ env, cwd, server: "quic://x", creds: "/c" }).context).toBeNull();
  });

  test("host and port are split out", () => {
    const t = resolveTarget({ env: setup(), cwd, server: "quic://[2001:db8::1]:9" });
    expect(t).toMatchObject({ host: "2001:db8::1", port: 9, url: "quic://[2001:db8::1]:9" });
  });

  test("an unknown --context lists the known ones, even when --server is given", () => {
    const env = setup();
    for (
      const flags of [{ context: "nope" }, { context: "nope", server: "quic://x", creds: "/c" }]
    ) {
      const e = errorOf(() => resolveTarget({ ...flags, env, cwd }));
      expect(e).toBeInstanceOf(ContextError);
      expect(e.message).toBe('no context named "nope" (known: acme, bare, lab)');
    }
    expect(errorOf(() => resolveTarget({ context: "a b", env, cwd })).message).toContain(
      'context name "a b" may only contain',
    );
  });

  test("bad --server and MACULA_URL are named in the error", () => {
    const env = setup();
    const e1 = errorOf(() => resolveTarget({ server: "http://x:1", env, cwd }));
    expect(e1).toBeInstanceOf(UrlError);
    expect(e1.message).toBe('--server "http://x:1": scheme must be quic://');
    const e2 = errorOf(() => resolveTarget({ env: { ...env, MACULA_URL: "quic://x:0" }, cwd }));
    expect(e2.message).toBe('MACULA_URL "quic://x:0": port 0 is out of range (1-65535)');
    expect(errorOf(() => resolveTarget({ creds: "", env, cwd })).message).toContain("--creds");
  });

  test("with no config file at all, nothing is created", () => {
    const { env, dir } = freshEnv();
    expect(resolveTarget({ env, cwd }).source).toBe("default");
    expect(() => statSync(dir)).toThrow();
  });
});
