/**
 * Permissions from certificate groups (docs/security.md, "Permissions"): what a client may
 * publish, subscribe to, serve and call, decided from the groups its certificate carries
 * (signed by the realm CA) and the rules in the node's configuration. Pure and synchronous: the
 * node a client attaches to asks `check` for each operation before the router acts on it.
 *
 * The rules, per group and per operation (`publish`, `subscribe`, `serve`, `call`, and `queue`
 * for queue-group names), each an `allow` and a `deny` list of patterns (topic syntax: `*` one
 * segment, `>` the rest):
 * - A deny pattern of any of the client's groups that the subject could match refuses it (deny
 *   wins). For a subscription, "could match" means the two patterns share a topic: a client
 *   never receives a message a deny rule names.
 * - Otherwise, when any of the client's groups has an allow list for the operation, those lists
 *   are the whole of what is allowed: the subject must fall inside one of their patterns (a
 *   subscription pattern inside an allow pattern).
 * - Otherwise the realm default decides (`default: allow` or `deny`).
 *
 * Nodes (role `node`) are not held to these rules: they carry every message of the mesh anyway.
 * Operators (`operatorGroup`, default `operator`) may also use inspection, control requests and
 * relays.
 *
 * @example
 * ```ts
 * const p = new Permissions(parsePermissions({
 *   default: "deny",
 *   groups: { sensors: { publish: { allow: ["sensors.>"] } } },
 * }));
 * p.check({ role: "client", groups: ["sensors"] }, "publish", "sensors.t1"); // null: allowed
 * p.check({ role: "client", groups: [] }, "publish", "sensors.t1")?.rule; // "permissions.default"
 * ```
 */
import { checkGroup, type Role } from "../identity/mod.ts";
import { patternProblem } from "../messaging/mod.ts";
import { PolicyError } from "./errors.ts";

/** What a client does on the bus. */
export type Operation = "publish" | "subscribe" | "serve" | "call";

/** The operations rules can speak to (`queue`: queue-group names of subscriptions). */
export const RULE_KINDS = ["publish", "subscribe", "serve", "call", "queue"] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** One allow and one deny list. */
export interface RuleSet {
  allow?: readonly string[];
  deny?: readonly string[];
}

/** A checked permissions configuration. */
export interface PermissionsConfig {
  /** What happens when no allow list of the client's groups speaks to the operation. */
  default: "allow" | "deny";
  /** The group whose clients may inspect, send control requests and use relays. */
  operatorGroup: string;
  /** Rules per group name. */
  groups: Readonly<Record<string, Partial<Record<RuleKind, RuleSet>>>>;
}

/** The configuration of a node that has none: everything allowed, operators by group. */
export const OPEN: PermissionsConfig = { default: "allow", operatorGroup: "operator", groups: {} };

/** A refusal: what was refused and by which rule. */
export interface Denial {
  operation: Operation | "queue";
  subject: string;
  /** The rule, as a path in the configuration: `permissions.groups.g.publish.deny[0]`. */
  rule: string;
  /** One line for the client and the log. */
  message: string;
}

/** Who is asking: the parts of a `PeerIdentity` that matter here. */
export interface Asker {
  role: Role;
  groups: readonly string[];
}

const DEFAULT_OPERATOR_GROUP = "operator";

/** Checks a raw `permissions:` section (parsed YAML); throws `PolicyError` naming the rule. */
export function parsePermissions(raw: unknown, at = "permissions"): PermissionsConfig {
  const top = record(raw, at, ["default", "operator_group", "groups"]);
  let def: "allow" | "deny" = "allow";
  if (top.default !== undefined) {
    if (top.default !== "allow" && top.default !== "deny") {
      throw new PolicyError(`${at}.default: must be allow or deny (got ${show(top.default)})`);
    }
    def = top.default;
  }
  let operatorGroup = DEFAULT_OPERATOR_GROUP;
  if (top.operator_group !== undefined) {
    operatorGroup = group(top.operator_group, `${at}.operator_group`);
  }
  const groups: Record<string, Partial<Record<RuleKind, RuleSet>>> = {};
  if (top.groups !== undefined && top.groups !== null) {
    const gs = record(top.groups, `${at}.groups`, null);
    for (const [name, rules] of Object.entries(gs)) {
      const where = `${at}.groups.${name}`;
      group(name, where);
      const r = record(rules ?? {}, where, RULE_KINDS);
      const out: Partial<Record<RuleKind, RuleSet>> = {};
      for (const kind of RULE_KINDS) {
        if (r[kind] === undefined || r[kind] === null) continue;
        const lists = record(r[kind], `${where}.${kind}`, ["allow", "deny"]);
        const set: { allow?: string[]; deny?: string[] } = {};
        for (const which of ["allow", "deny"] as const) {
          if (lists[which] === undefined || lists[which] === null) continue;
          set[which] = patterns(lists[which], `${where}.${kind}.${which}`);
        }
        out[kind] = set;
      }
      groups[name] = out;
    }
  }
  return { default: def, operatorGroup, groups };
}

/** Decisions kept per groups list and operation (then forgotten all at once). */
const DECISIONS_KEPT = 256;
/** Groups lists whose decisions are kept (then all forgotten at once). */
const GROUP_SETS_KEPT = 256;

/** A permissions configuration, ready to answer. */
export class Permissions {
  constructor(readonly config: PermissionsConfig = OPEN) {}

  /** True when `who` may inspect, send control requests and use relays. */
  isOperator(who: Asker): boolean {
    return who.role === "node" || who.groups.includes(this.config.operatorGroup);
  }

  /**
   * Null when `who` may do `op` on `subject` (a topic, a subscription pattern, a procedure), with
   * the subscription's `queue` group if any; else the `Denial` naming the rule.
   */
  check(who: Asker, op: Operation, subject: string, queue?: string): Denial | null {
    if (who.role === "node") return null;
    if (queue !== undefined) return this.#check(who, op, subject, queue); // a subscription: rare
    // Answers depend only on the groups: they are kept per groups list (shared by the sessions
    // that have it; at most GROUP_SETS_KEPT sets) and operation, for the last DECISIONS_KEPT
    // subjects each. A publisher asks per message. A session's groups array never changes, so
    // its key is computed once.
    let key = this.#keys.get(who.groups);
    if (key === undefined) {
      key = JSON.stringify(who.groups); // exact: a denial's message names the groups as held
      this.#keys.set(who.groups, key);
    }
    let byOp = this.#kept.get(key);
    if (byOp === undefined) {
      if (this.#kept.size >= GROUP_SETS_KEPT) this.#kept.clear();
      byOp = new Map();
      this.#kept.set(key, byOp);
    }
    let kept = byOp.get(op);
    if (kept === undefined) {
      kept = new Map();
      byOp.set(op, kept);
    }
    const had = kept.get(subject);
    if (had !== undefined) return had;
    const d = this.#check(who, op, subject);
    if (kept.size >= DECISIONS_KEPT) kept.clear();
    kept.set(subject, d);
    return d;
  }

  readonly #keys = new WeakMap<readonly string[], string>();
  readonly #kept = new Map<string, Map<Operation, Map<string, Denial | null>>>();

  #check(who: Asker, op: Operation, subject: string, queue?: string): Denial | null {
    const d = this.#decide(who, op, subject);
    if (d || queue === undefined) return d;
    return this.#decide(who, "queue", queue);
  }

  #decide(who: Asker, op: RuleKind, subject: string): Denial | null {
    const groups = [...new Set(who.groups)].filter((g) => g in this.config.groups).sort();
    const deny = (rule: string, why: string): Denial => ({
      operation: op,
      subject,
      rule,
      message: `${op} ${subject}: ${why} (${rule})`,
    });
    for (const g of groups) {
      const list = this.config.groups[g]![op]?.deny ?? [];
      for (let i = 0; i < list.length; i++) {
        if (overlaps(list[i]!, subject)) {
          return deny(`permissions.groups.${g}.${op}.deny[${i}]`, `denied by ${list[i]}`);
        }
      }
    }
    const lists = groups.filter((g) => this.config.groups[g]![op]?.allow !== undefined);
    if (lists.length > 0) {
      for (const g of lists) {
        for (const a of this.config.groups[g]![op]!.allow!) {
          if (covers(a, subject)) return null;
        }
      }
      return deny(
        lists.map((g) => `permissions.groups.${g}.${op}.allow`).join(", "),
        "not in the allow list of the groups",
      );
    }
    if (this.config.default === "allow") return null;
    const held = who.groups.length > 0 ? `groups ${who.groups.join(", ")}` : "no groups";
    return deny("permissions.default", `no rule allows it (${held}) and the default is deny`);
  }
}

/**
 * True when every topic `inner` matches is matched by `outer` (both patterns; a topic is a
 * pattern without wildcards). `covers("a.>", "a.*.c")` is true; `covers("a.*", "a.>")` false.
 */
export function covers(outer: string, inner: string): boolean {
  const a = outer.split(".");
  const b = inner.split(".");
  for (let i = 0; i < a.length; i++) {
    if (a[i] === ">") return i < b.length;
    if (i >= b.length || b[i] === ">") return false;
    if (a[i] !== "*" && (b[i] === "*" || a[i] !== b[i])) return false;
  }
  return a.length === b.length;
}

/** True when some topic matches both patterns. `overlaps("a.*", "*.b")` is true. */
export function overlaps(x: string, y: string): boolean {
  const a = x.split(".");
  const b = y.split(".");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i >= a.length || i >= b.length) return false;
    if (a[i] === ">" || b[i] === ">") return true;
    if (a[i] !== "*" && b[i] !== "*" && a[i] !== b[i]) return false;
  }
  return true;
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

function record(
  v: unknown,
  at: string,
  keys: readonly string[] | null,
): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new PolicyError(`${at}: must be a mapping (got ${show(v)})`);
  }
  const o = v as Record<string, unknown>;
  if (keys) {
    for (const k of Object.keys(o)) {
      if (!keys.includes(k)) {
        throw new PolicyError(
          `${at}: unknown key ${JSON.stringify(k)} (known: ${keys.join(", ")})`,
        );
      }
    }
  }
  return o;
}

function group(v: unknown, at: string): string {
  if (typeof v !== "string") throw new PolicyError(`${at}: must be a group name (got ${show(v)})`);
  try {
    return checkGroup(v);
  } catch (e) {
    throw new PolicyError(`${at}: ${(e as Error).message}`, { cause: e });
  }
}

function patterns(v: unknown, at: string): string[] {
  if (!Array.isArray(v)) {
    throw new PolicyError(`${at}: must be a list of patterns (got ${show(v)})`);
  }
  if (v.length > 1024) throw new PolicyError(`${at}: ${v.length} patterns, at most 1024`);
  return v.map((p, i) => {
    const problem = typeof p === "string" ? patternProblem(p) : "not a string";
    if (problem !== null) throw new PolicyError(`${at}[${i}]: ${show(p)}: ${problem}`);
    return p as string;
  });
}
