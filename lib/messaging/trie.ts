/**
 * The subscription index: a trie keyed by topic segment, so a publish walks at most a few
 * branches per segment (the literal segment, `*`, `>`) instead of scanning every subscription.
 * Pure state; no IO, no clock, no randomness unless a strategy brings its own (injected).
 *
 * A subscription is `(pattern, subscriber, queue?)`. `match(topic)` returns the receivers of
 * one message: every plain subscriber whose pattern matches, plus exactly one member of each
 * queue group that has a matching subscription. Queue groups are keyed by name across patterns
 * (NATS semantics): members of group `g` on `orders.*` and on `orders.>` compete for the same
 * message. Receivers are de-duplicated: a subscriber matched through several patterns appears
 * once.
 *
 * @example
 * ```ts
 * import { SubscriptionTrie } from "./trie.ts";
 * const trie = new SubscriptionTrie<string>();
 * trie.add("orders.*", "audit");
 * trie.add("orders.>", "w1", "workers");
 * trie.add("orders.>", "w2", "workers");
 * trie.match("orders.new"); // ["audit", "w1"], then ["audit", "w2"], …
 * ```
 */
import { checkPattern, ONE, TAIL, TopicError } from "./topics.ts";

/** Queue group names: 1–64 of `A-Z a-z 0-9 _ - .`. */
const GROUP = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Patterns and queue group names `add` found valid lately, each checked once rather than at
 * every subscription that repeats it (a far node's record, taken by every node: a regex per
 * segment each time); bounded.
 */
const validPatterns = new Set<string>();
const validGroups = new Set<string>();

function remember(set: Set<string>, s: string): void {
  if (set.size >= 1 << 16) set.clear();
  set.add(s);
}

/** Throws `TopicError` unless `group` is a valid queue group name; returns it. */
export function checkQueueGroup(group: string): string {
  if (typeof group !== "string" || !GROUP.test(group)) {
    throw new TopicError(
      `invalid queue group ${JSON.stringify(group)}: use 1-64 of A-Z, a-z, 0-9, '_', '-' and '.'`,
    );
  }
  return group;
}

/**
 * Chooses the member of a queue group that receives one message. `candidates` is non-empty,
 * de-duplicated and in a deterministic order (trie walk order, then subscription order); return
 * an index into it. Must be deterministic given its own state so simulations replay.
 */
export interface QueueStrategy<S> {
  pick(group: string, candidates: readonly S[]): number;
  /** Called when a group loses its last subscription, so per-group state can be dropped. */
  forget?(group: string): void;
}

/**
 * Round-robin per group: a counter per group name, advanced once per message. With a stable
 * member set, N messages spread to within one of N / members each.
 */
export class RoundRobin<S> implements QueueStrategy<S> {
  private readonly next = new Map<string, number>();
  pick(group: string, candidates: readonly S[]): number {
    const n = this.next.get(group) ?? 0;
    this.next.set(group, n + 1 >= Number.MAX_SAFE_INTEGER ? 0 : n + 1);
    return n % candidates.length;
  }
  forget(group: string): void {
    this.next.delete(group);
  }
}

/** Uniform random choice with an injected generator returning numbers in [0, 1). */
export class RandomPick<S> implements QueueStrategy<S> {
  constructor(private readonly random: () => number) {}
  pick(_group: string, candidates: readonly S[]): number {
    return Math.min(candidates.length - 1, Math.floor(this.random() * candidates.length));
  }
}

interface Node<S> {
  readonly children: Map<string, Node<S>>;
  readonly plain: Set<S>;
  readonly queues: Map<string, Set<S>>;
  readonly parent: Node<S> | undefined;
  readonly segment: string;
}

function node<S>(parent: Node<S> | undefined, segment: string): Node<S> {
  return { children: new Map(), plain: new Set(), queues: new Map(), parent, segment };
}

/** One subscription, as listed by `subscriptionsOf`. */
export interface Subscription<S> {
  readonly pattern: string;
  readonly subscriber: S;
  readonly queue?: string;
}

/** Counts for inspection. */
export interface TrieCounts {
  /** Subscriptions held (each distinct `(pattern, subscriber, queue)` once). */
  readonly subscriptions: number;
  /** Distinct patterns with at least one subscription. */
  readonly patterns: number;
  /** Distinct queue group names with at least one subscription. */
  readonly queueGroups: number;
  /** Trie nodes, including the root (a memory indicator). */
  readonly nodes: number;
}

/** Topics whose receivers are remembered between changes (a hot-topic cache). */
export const MATCH_CACHE_SIZE = 8192;

/** The subscription index. `S` is the subscriber id: a local subscription id or a peer id. */
export class SubscriptionTrie<S> {
  private readonly root: Node<S> = node<S>(undefined, "");
  private readonly strategy: QueueStrategy<S>;
  /**
   * subscriber → its subscription, or key (`pattern` or `pattern queue`) → subscription once it
   * has more than one, for removeSubscriber. Most subscribers hold one: no map for them. Not kept
   * when the owner never asks by subscriber (`bySubscriber: false`).
   */
  private readonly bySubscriber:
    | Map<S, Subscription<S> | Map<string, Subscription<S>>>
    | undefined;
  /** group name → subscriptions in that group, across patterns. */
  private readonly groupSizes = new Map<string, number>();
  private subs = 0;
  private pats = 0;
  private nodeCount = 1;
  /** topic → receivers, for topics no queue group matches; cleared on every change. */
  private readonly cache = new Map<string, readonly S[]>();

  /**
   * `strategy` picks queue-group members; round-robin per group by default. `bySubscriber: false`
   * keeps no index by subscriber (`removeSubscriber` and `subscriptionsOf` then throw): for an
   * owner that removes each subscription itself and holds many (a router's far interest: one
   * entry per origin and pattern, an object and a map entry fewer each).
   */
  constructor(options: { strategy?: QueueStrategy<S>; bySubscriber?: boolean } = {}) {
    this.strategy = options.strategy ?? new RoundRobin<S>();
    this.bySubscriber = options.bySubscriber === false ? undefined : new Map();
  }

  /**
   * Adds a subscription; validates `pattern` (and `queue`), throwing `TopicError`. Returns false
   * when the same `(pattern, subscriber, queue)` is already present (nothing changes).
   */
  add(pattern: string, subscriber: S, queue?: string): boolean {
    if (!validPatterns.has(pattern)) remember(validPatterns, checkPattern(pattern));
    if (queue !== undefined && !validGroups.has(queue)) {
      remember(validGroups, checkQueueGroup(queue));
    }
    let n = this.root;
    for (const seg of pattern.split(".")) {
      let child = n.children.get(seg);
      if (child === undefined) {
        child = node(n, seg);
        n.children.set(seg, child);
        this.nodeCount++;
      }
      n = child;
    }
    const wasEmpty = isEmptyLeaf(n);
    if (queue === undefined) {
      if (n.plain.has(subscriber)) return false;
      n.plain.add(subscriber);
    } else {
      let members = n.queues.get(queue);
      if (members === undefined) {
        members = new Set();
        n.queues.set(queue, members);
      }
      if (members.has(subscriber)) return false;
      members.add(subscriber);
      this.groupSizes.set(queue, (this.groupSizes.get(queue) ?? 0) + 1);
    }
    if (wasEmpty) this.pats++;
    this.subs++;
    this.cache.clear();
    const by = this.bySubscriber;
    if (by === undefined) return true;
    const sub: Subscription<S> = queue === undefined
      ? { pattern, subscriber }
      : { pattern, subscriber, queue };
    const mine = by.get(subscriber);
    if (mine === undefined) by.set(subscriber, sub);
    else if (mine instanceof Map) mine.set(key(pattern, queue), sub);
    else if (isSub(mine, pattern, queue)) by.set(subscriber, sub);
    else {
      const many = new Map<string, Subscription<S>>([[key(mine.pattern, mine.queue), mine]]);
      many.set(key(pattern, queue), sub);
      by.set(subscriber, many);
    }
    return true;
  }

  /** Removes one subscription; returns false when it was not present. Never throws. */
  remove(pattern: string, subscriber: S, queue?: string): boolean {
    if (typeof pattern !== "string") return false;
    let n: Node<S> | undefined = this.root;
    for (const seg of pattern.split(".")) {
      n = n.children.get(seg);
      if (n === undefined) return false;
    }
    if (queue === undefined) {
      if (!n.plain.delete(subscriber)) return false;
    } else {
      const members = n.queues.get(queue);
      if (members === undefined || !members.delete(subscriber)) return false;
      if (members.size === 0) n.queues.delete(queue);
      const left = (this.groupSizes.get(queue) ?? 1) - 1;
      if (left === 0) {
        this.groupSizes.delete(queue);
        this.strategy.forget?.(queue);
      } else {
        this.groupSizes.set(queue, left);
      }
    }
    this.subs--;
    this.cache.clear();
    const by = this.bySubscriber;
    const mine = by?.get(subscriber);
    if (mine instanceof Map) {
      mine.delete(key(pattern, queue));
      if (mine.size === 0) by!.delete(subscriber);
    } else if (mine !== undefined && isSub(mine, pattern, queue)) {
      by!.delete(subscriber);
    }
    if (isEmptyLeaf(n)) {
      this.pats--;
      this.prune(n);
    }
    return true;
  }

  /** Removes every subscription of `subscriber` (e.g. its session closed); returns how many. */
  removeSubscriber(subscriber: S): number {
    const mine = this.index().get(subscriber);
    if (mine === undefined) return 0;
    let removed = 0;
    for (const sub of mine instanceof Map ? [...mine.values()] : [mine]) {
      if (this.remove(sub.pattern, subscriber, sub.queue)) removed++;
    }
    return removed;
  }

  /** The subscriptions of `subscriber`, in the order they were added. */
  subscriptionsOf(subscriber: S): Subscription<S>[] {
    const mine = this.index().get(subscriber);
    if (mine === undefined) return [];
    return mine instanceof Map ? [...mine.values()] : [mine];
  }

  /** True when `(pattern, subscriber, queue)` is present. */
  has(pattern: string, subscriber: S, queue?: string): boolean {
    if (this.bySubscriber === undefined) {
      let n: Node<S> | undefined = this.root;
      for (const seg of pattern.split(".")) {
        n = n.children.get(seg);
        if (n === undefined) return false;
      }
      return queue === undefined ? n.plain.has(subscriber) : !!n.queues.get(queue)?.has(subscriber);
    }
    const mine = this.bySubscriber.get(subscriber);
    if (mine === undefined) return false;
    return mine instanceof Map ? mine.has(key(pattern, queue)) : isSub(mine, pattern, queue);
  }

  private index(): Map<S, Subscription<S> | Map<string, Subscription<S>>> {
    if (this.bySubscriber === undefined) {
      throw new RangeError(
        "this SubscriptionTrie keeps no index by subscriber (bySubscriber: false)",
      );
    }
    return this.bySubscriber;
  }

  /**
   * The receivers of one message on `topic` (which must be a valid topic; not re-checked here,
   * the publish path validates once): plain subscribers first, then one member per queue group,
   * de-duplicated. Advances the queue strategy's state. Results for topics that no queue group
   * matches are cached until the subscriptions change: do not modify the returned array.
   */
  match(topic: string): readonly S[] {
    const hit = this.cache.get(topic);
    if (hit !== undefined) return hit;
    const segs = topic.split(".");
    const plain = new Set<S>();
    const groups = new Map<string, Set<S>>();
    this.walk(this.root, segs, 0, plain, groups);
    if (groups.size === 0) {
      // No queue group involved: the answer stays the same until the subscriptions change.
      if (this.cache.size >= MATCH_CACHE_SIZE) this.cache.clear();
      const result = [...plain];
      this.cache.set(topic, result);
      return result;
    }
    const out = new Set<S>(plain);
    for (const [group, members] of groups) {
      const candidates = [...members];
      const i = this.strategy.pick(group, candidates);
      const chosen = candidates[i];
      if (chosen === undefined) {
        throw new RangeError(`queue strategy picked index ${i} of ${candidates.length}`);
      }
      out.add(chosen);
    }
    return [...out];
  }

  /** True when at least one subscription matches `topic` (no strategy state changes). */
  hasInterest(topic: string): boolean {
    const plain = new Set<S>();
    const groups = new Map<string, Set<S>>();
    this.walk(this.root, topic.split("."), 0, plain, groups);
    return plain.size > 0 || groups.size > 0;
  }

  /** Counts for inspection. */
  counts(): TrieCounts {
    return {
      subscriptions: this.subs,
      patterns: this.pats,
      queueGroups: this.groupSizes.size,
      nodes: this.nodeCount,
    };
  }

  /** Number of subscriptions. */
  get size(): number {
    return this.subs;
  }

  private walk(
    n: Node<S>,
    segs: readonly string[],
    i: number,
    plain: Set<S>,
    groups: Map<string, Set<S>>,
  ): void {
    if (i === segs.length) {
      collect(n, plain, groups);
      return;
    }
    const tail = n.children.get(TAIL);
    if (tail !== undefined) collect(tail, plain, groups); // '>' takes the rest (≥ 1 segment)
    const literal = n.children.get(segs[i] as string);
    if (literal !== undefined) this.walk(literal, segs, i + 1, plain, groups);
    const one = n.children.get(ONE);
    if (one !== undefined) this.walk(one, segs, i + 1, plain, groups);
  }

  private prune(n: Node<S>): void {
    let cur: Node<S> = n;
    while (cur.parent !== undefined && cur.children.size === 0 && isEmptyLeaf(cur)) {
      cur.parent.children.delete(cur.segment);
      this.nodeCount--;
      cur = cur.parent;
    }
  }
}

function key(pattern: string, queue: string | undefined): string {
  return queue === undefined ? pattern : `${pattern} ${queue}`;
}

/** Whether `s` is the subscription `(pattern, queue)` (the same `key`). */
function isSub<S>(s: Subscription<S>, pattern: string, queue: string | undefined): boolean {
  return key(s.pattern, s.queue) === key(pattern, queue);
}

function isEmptyLeaf<S>(n: Node<S>): boolean {
  return n.plain.size === 0 && n.queues.size === 0;
}

function collect<S>(n: Node<S>, plain: Set<S>, groups: Map<string, Set<S>>): void {
  for (const s of n.plain) plain.add(s);
  for (const [group, members] of n.queues) {
    let g = groups.get(group);
    if (g === undefined) {
      g = new Set();
      groups.set(group, g);
    }
    for (const m of members) g.add(m);
  }
}
