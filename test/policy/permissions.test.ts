/** Permissions from certificate groups (lib/policy): the pattern relations, the decision, the config check. */
import { describe, expect, test } from "bun:test";
import {
  covers,
  OPEN,
  overlaps,
  parsePermissions,
  Permissions,
  PolicyError,
} from "../../lib/policy/mod.ts";

const client = (...groups: string[]) => ({ role: "client" as const, groups });
const node = { role: "node" as const, groups: [] };

describe("pattern relations", () => {
  test("covers: every topic of the inner pattern matches the outer", () => {
    const yes: [string, string][] = [
      ["a.>", "a.b"],
      ["a.>", "a.*.c"],
      ["a.>", "a.>"],
      ["a.*", "a.b"],
      ["a.*", "a.*"],
      [">", "x.y.z"],
      ["a.b", "a.b"],
    ];
    const no: [string, string][] = [
      ["a.*", "a.>"],
      ["a.b", "a.*"],
      ["a.>", "a"],
      ["a.*", "a.b.c"],
      ["a.b", "a.c"],
      ["a.b.c", "a.b"],
      ["*.b", ">"],
    ];
    for (const [o, i] of yes) expect([o, i, covers(o, i)]).toEqual([o, i, true]);
    for (const [o, i] of no) expect([o, i, covers(o, i)]).toEqual([o, i, false]);
  });

  test("overlaps: some topic matches both", () => {
    const yes: [string, string][] = [
      ["a.*", "*.b"],
      [">", "a"],
      ["a.>", "a.b.c"],
      ["secret.>", ">"],
      ["a.b", "a.b"],
    ];
    const no: [string, string][] = [
      ["a.b", "a.c"],
      ["a.>", "a"],
      ["a.*", "a.b.c"],
      ["a.b", "b.>"],
    ];
    for (const [x, y] of yes) {
      expect([x, y, overlaps(x, y), overlaps(y, x)]).toEqual([x, y, true, true]);
    }
    for (const [x, y] of no) {
      expect([x, y, overlaps(x, y), overlaps(y, x)]).toEqual([x, y, false, false]);
    }
  });
});

describe("Permissions.check", () => {
  const p = new Permissions(parsePermissions({
    default: "deny",
    groups: {
      sensors: {
        publish: { allow: ["sensors.>"], deny: ["sensors.admin.>"] },
        subscribe: { allow: ["commands.>"] },
        queue: { allow: ["workers"] },
      },
      readers: { subscribe: { allow: [">"], deny: ["secret.>"] } },
      math: { serve: { allow: ["math.*"] }, call: { allow: ["time.now"] } },
    },
  }));

  test("nodes are not held to the rules", () => {
    expect(p.check(node, "publish", "anything")).toBeNull();
    expect(p.isOperator(node)).toBe(true);
  });

  test("an allow list is the whole of what its group may do", () => {
    expect(p.check(client("sensors"), "publish", "sensors.t1")).toBeNull();
    const d = p.check(client("sensors"), "publish", "other.t1")!;
    expect(d.rule).toBe("permissions.groups.sensors.publish.allow");
    expect(d.message).toBe(
      "publish other.t1: not in the allow list of the groups (permissions.groups.sensors.publish.allow)",
    );
  });

  test("deny wins over allow, in any of the client's groups", () => {
    const d = p.check(client("sensors"), "publish", "sensors.admin.reset")!;
    expect(d.rule).toBe("permissions.groups.sensors.publish.deny[0]");
    expect(d.message).toContain("denied by sensors.admin.>");
    // readers may subscribe to everything but secret.>; a pattern that reaches into it is refused.
    expect(p.check(client("readers"), "subscribe", "news.>")).toBeNull();
    expect(p.check(client("readers"), "subscribe", ">")?.rule).toBe(
      "permissions.groups.readers.subscribe.deny[0]",
    );
    expect(p.check(client("readers", "sensors"), "subscribe", "secret.x")?.rule).toBe(
      "permissions.groups.readers.subscribe.deny[0]",
    );
  });

  test("a subscription must fall inside an allow pattern", () => {
    expect(p.check(client("sensors"), "subscribe", "commands.*.reboot")).toBeNull();
    expect(p.check(client("sensors"), "subscribe", ">")?.operation).toBe("subscribe");
  });

  test("queue groups have their own rules", () => {
    expect(p.check(client("sensors"), "subscribe", "commands.x", "workers")).toBeNull();
    const d = p.check(client("sensors"), "subscribe", "commands.x", "thieves")!;
    expect(d.operation).toBe("queue");
    expect(d.rule).toBe("permissions.groups.sensors.queue.allow");
  });

  test("serve and call by procedure name", () => {
    expect(p.check(client("math"), "serve", "math.add")).toBeNull();
    expect(p.check(client("math"), "serve", "auth.login")?.rule).toBe(
      "permissions.groups.math.serve.allow",
    );
    expect(p.check(client("math"), "call", "time.now")).toBeNull();
  });

  test("no rule of the client's groups: the realm default", () => {
    const d = p.check(client(), "subscribe", ">")!;
    expect(d.rule).toBe("permissions.default");
    expect(d.message).toBe(
      "subscribe >: no rule allows it (no groups) and the default is deny (permissions.default)",
    );
    // A group with no rule for the operation falls to the default too.
    expect(p.check(client("math"), "publish", "x")?.rule).toBe("permissions.default");
    const open = new Permissions(OPEN);
    expect(open.check(client(), "subscribe", ">")).toBeNull();
  });

  test("answers kept per asker are the same answers: per groups, per operation, past the keep limit", () => {
    // One session each (the same groups array every time, as a session's certificate gives).
    const sensor = client("sensors");
    const math = client("math");
    const nobody = client();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1500; i++) {
        const topic = i % 2 === 0 ? `sensors.t${i}` : `sensors.admin.t${i}`;
        const want = i % 2 === 0 ? null : "permissions.groups.sensors.publish.deny[0]";
        expect(p.check(sensor, "publish", topic)?.rule ?? null).toBe(want);
        expect(p.check(nobody, "publish", topic)?.rule).toBe("permissions.default");
        expect(p.check(sensor, "call", topic)?.rule).toBe("permissions.default");
      }
      expect(p.check(math, "call", "time.now")).toBeNull();
      expect(p.check(math, "serve", "time.now")?.rule).toBe("permissions.groups.math.serve.allow");
      // A subscription's queue is judged with it, every time.
      expect(p.check(sensor, "subscribe", "commands.x", "workers")).toBeNull();
      expect(p.check(sensor, "subscribe", "commands.x", "thieves")?.operation).toBe("queue");
    }
  });

  test("sessions with the same groups share answers; each denial names the groups as held", () => {
    const open = new Permissions(parsePermissions({ default: "deny" }));
    const a = open.check(client("x", "y"), "publish", "t")!;
    const b = open.check(client("x", "y"), "publish", "t")!;
    const c = open.check(client("y", "x"), "publish", "t")!;
    expect(b).toBe(a); // one answer for the set, not one per session
    expect(a.message).toContain("(groups x, y)");
    expect(c.message).toContain("(groups y, x)");
    // More sets of groups than are kept: every one still gets its own, right answer.
    for (let i = 0; i < 600; i++) {
      expect(open.check(client(`g${i}`), "publish", "t")!.message).toContain(`(groups g${i})`);
    }
  });

  test("operators by group", () => {
    expect(p.isOperator(client("operator"))).toBe(true);
    expect(p.isOperator(client("sensors"))).toBe(false);
    const custom = new Permissions(parsePermissions({ operator_group: "ops" }));
    expect(custom.isOperator(client("ops"))).toBe(true);
    expect(custom.isOperator(client("operator"))).toBe(false);
  });
});

describe("parsePermissions", () => {
  const bad = (raw: unknown) => {
    try {
      parsePermissions(raw);
    } catch (e) {
      expect(e).toBeInstanceOf(PolicyError);
      return (e as Error).message;
    }
    throw new Error("accepted");
  };

  test("defaults: allow, operator", () => {
    expect(parsePermissions({})).toEqual(OPEN);
  });

  test("errors name the rule", () => {
    expect(bad({ default: "maybe" })).toBe(
      'permissions.default: must be allow or deny (got "maybe")',
    );
    expect(bad({ groups: { s: { publish: { allow: ["a..b"] } } } })).toStartWith(
      'permissions.groups.s.publish.allow[0]: "a..b": ',
    );
    expect(bad({ groups: { s: { publsh: {} } } })).toBe(
      'permissions.groups.s: unknown key "publsh" (known: publish, subscribe, serve, call, queue)',
    );
    expect(bad({ groups: { s: { call: { allow: "x" } } } })).toBe(
      'permissions.groups.s.call.allow: must be a list of patterns (got "x")',
    );
    expect(bad({ groups: { "Bad Group": {} } })).toStartWith("permissions.groups.Bad Group: ");
    expect(bad({ groups: { s: { serve: { allow: [7] } } } })).toBe(
      "permissions.groups.s.serve.allow[0]: 7: not a string",
    );
    expect(bad([])).toBe("permissions: must be a mapping (got [])");
  });
});
