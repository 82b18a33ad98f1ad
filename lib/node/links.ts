/**
 * Links: a session's bus channel as the router sees it (`BusLink`), and the `Bus` that attaches
 * links to the router, reads their frames into it, and sends what it drains.
 *
 * - A client opens channel `client`, a peer node channel `route`; the node answers with its own
 *   channel of the same name (a dialer has opened its own already), then the router takes the
 *   link.
 * - Backpressure: messages (MSG, FWD) to a link whose stream is backed up past `maxBacklog` are
 *   dropped and counted per subscription; the client is told how many (`LOST`) once the backlog
 *   drains. Calls go to another provider while a link is backed up (`congested`). Control
 *   frames are not dropped, but no frame kind escapes the bound: a link backed up past twice
 *   `maxBacklog` is closed (BACKED_UP), counted.
 * - Delivery accounting on routes: a node confirms the FWDs it took from a peer (`RCVD`, the
 *   count in all, every `CONFIRM_EVERY` frames or `CONFIRM_MS` after one). When a route goes
 *   down, the FWDs written to it that its peer never confirmed are counted as lost
 *   (`dropped.lostInRoute`) and logged: forwarded into a dying route is not delivered.
 * - Letting a route go without loss (`retire`; docs/routing.md, "Letting a route go"): the
 *   node makes the route's paths a last resort and says RETIRE; the peer does the same and
 *   answers RETIRE (after confirming what it took). Once the answer is in, every FWD written to
 *   the route is confirmed and no call is in flight over it, the node closes the session. Past
 *   `RUNTIME.retireMs` it closes anyway, and what was unconfirmed is counted lost.
 * - Shortcuts (docs/routing.md, "Shortcuts"): the router asks for a direct link to a far node
 *   its clients keep sending to; the node reaches it (direct or punched, not relayed), opens
 *   channel `shortcut` on that session, and the peer answers with its own. A shortcut is let go
 *   like a route (RETIRE, drained), but only its channels end: the session may carry membership
 *   and a route. A node holds at most twice `overlay.shortcuts` of them; one past that is taken
 *   and let go at once (its dialer's messages on the way still arrive).
 * - A frame that breaks the protocol closes the session (PROTOCOL_VIOLATION) with the reason.
 * - Only a node's certificate may open `route`: a client's is closed (FORBIDDEN) with the reason.
 *   What a client may do on `client` is the router's `authorize` (the node's permissions).
 */
import {
  busCodec,
  type BusOperation,
  CLIENT_CHANNEL,
  type Link,
  ProtocolError,
  ROUTE_CHANNEL,
  Router,
  type RouterOptions,
  type RouterSend,
  SHORT_ID_CHARS,
  SHORTCUT_CHANNEL,
} from "../messaging/mod.ts";
import { ChannelWriter, type PeerSession } from "../peer/mod.ts";
import { WireError } from "../wire/mod.ts";
import { Driver, type Log, monoNow } from "../util/mod.ts";
import type { NodeConfig } from "./config.ts";
import { RUNTIME } from "./defaults.ts";

/** Application close code for a session closed because the peer broke the protocol. */
export const PROTOCOL_VIOLATION = 0x12;
/** Application close code for a session that asked for what its certificate does not allow. */
export const FORBIDDEN = 0x13;
/** Application close code for a session whose outbound queue passed twice the backlog bound. */
export const BACKED_UP = 0x14;

/** Messages dropped because a link was backed up (shared by every link of a node). */
export interface Dropped {
  messages: number;
  forwards: number;
  /** Sessions closed because their queue passed twice the bound (any frame kind). */
  closedBackedUp: number;
  /** Sessions closed because the node's queues passed `limits.max_queued_bytes` (largest first). */
  shed: number;
  /** FWDs written to a route that went down before its peer confirmed taking them (RCVD). */
  lostInRoute: number;
}

/** A route confirms the FWDs it took after this many… */
export const CONFIRM_EVERY = 32;
/** …or this long after the first one not yet confirmed. */
export const CONFIRM_MS = 20;

/** One session's bus channel. */
export class BusLink implements Link {
  writer: ChannelWriter | null = null;
  /** A route to a configured seed (`join`): kept whatever the overlay prefers. */
  seed = false;
  /** On a shortcut: the far node's short id (the router's `Link.shortcut`). */
  shortcut: string | undefined = undefined;
  /** On a shortcut: the peer's channel is being read (a second one is a protocol violation). */
  reading = false;
  /** Resolves once the router has the link (frames are read only after that). */
  readonly attached: Promise<void>;
  markAttached!: () => void;
  /** Messages dropped per subscription id since the last LOST. */
  readonly lost = new Map<number, number>();
  #lostTimer: ReturnType<typeof setTimeout> | undefined;
  /** The backlog at which the node's budget is next checked. */
  #budgetMark = 0;
  /** FWDs written to this route, and how many of them its peer confirmed (RCVD). */
  forwardsWritten = 0;
  forwardsConfirmed = 0;
  /** FWDs taken from this route's peer, and how many of them this node has confirmed. */
  #taken = 0;
  #takenConfirmed = 0;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * Set while the route is being let go: the reason, whether the peer has answered RETIRE
   * (`answered`), and the bound's timer.
   */
  retiring:
    | { reason: string; answered: boolean; timer: ReturnType<typeof setTimeout> }
    | undefined;

  constructor(
    readonly id: string,
    readonly kind: "client" | "node",
    readonly session: PeerSession,
    readonly dialed: boolean,
    private readonly maxBacklog: number,
    private readonly dropped: Dropped,
    /** Called when this link is backed up: the bus checks the node's budget over all links. */
    private readonly onCongested: () => void = () => {},
    /** Called for each message or forward dropped because this link is backed up (the log). */
    private readonly onDropped: (l: BusLink) => void = () => {},
  ) {
    this.attached = new Promise((r) => (this.markAttached = r));
  }

  #rtt = { ms: 1, at: -Infinity };

  /** The session's RTT (ms; read from QUIC at most once a second): what paths cost. */
  rtt(): number {
    const now = monoNow();
    if (now - this.#rtt.at > 1000) {
      this.#rtt.at = now;
      try {
        const ms = this.session.conn.stats().rttMs;
        if (ms > 0) this.#rtt.ms = ms;
      } catch {
        // closed meanwhile: keep the last figure
      }
    }
    return this.#rtt.ms;
  }

  /** Bytes queued to this link, not yet taken by QUIC. */
  backlog(): number {
    return this.writer?.backlog ?? 0;
  }

  /** True while frames to this link are backed up past the bound (the router avoids it). */
  congested(): boolean {
    return (this.writer?.backlog ?? 0) > this.maxBacklog;
  }

  /** Queues one bus frame; a message to a backed-up link is dropped and counted instead. */
  send(name: string, fields: Record<string, unknown>): void {
    const w = this.writer;
    if (!w) return;
    if (w.backlog > 2 * this.maxBacklog) {
      // Whatever the frame: a peer that does not read cannot make this node hold more.
      if (!this.session.conn.closeInfo) {
        this.dropped.closedBackedUp++;
        void this.session.conn.close(
          BACKED_UP,
          `bus queue to this session over ${2 * this.maxBacklog} bytes: it does not read`,
        );
      }
      if (name === "FWD") this.dropped.forwards++;
      else if (name === "MSG") this.dropped.messages++;
      if (name === "FWD" || name === "MSG") this.onDropped(this);
      return;
    }
    // Backed up: the bus checks the node's budget each time this queue grows by an eighth of
    // the bound (at most 8 checks between the bound and twice it, whatever the frame rate).
    if (w.backlog > this.maxBacklog) {
      if (w.backlog >= this.#budgetMark) {
        this.#budgetMark = w.backlog + this.maxBacklog / 8;
        this.onCongested();
      }
    } else this.#budgetMark = 0;
    if (name === "MSG" || name === "FWD") {
      if (w.backlog > this.maxBacklog) {
        if (name === "MSG") {
          const sid = fields.sid as number;
          this.lost.set(sid, (this.lost.get(sid) ?? 0) + 1);
          this.dropped.messages++;
          this.#reportLost();
        } else this.dropped.forwards++;
        this.onDropped(this);
        return;
      }
    }
    w.write(busCodec.encode(name, fields));
    if (name === "FWD") this.forwardsWritten++;
  }

  /** The peer confirmed taking `count` of our FWDs in all (RCVD). */
  confirmed(count: number): void {
    if (count < this.forwardsConfirmed || count > this.forwardsWritten) {
      throw new ProtocolError(
        `RCVD: confirms ${count} forwards; ${this.forwardsWritten} were sent, ${this.forwardsConfirmed} confirmed before`,
      );
    }
    this.forwardsConfirmed = count;
  }

  /** This node took one FWD from the peer: confirm it soon (or now, past `CONFIRM_EVERY`). */
  took(): void {
    this.#taken++;
    if (this.#taken - this.#takenConfirmed >= CONFIRM_EVERY) this.confirmTaken();
    else {
      this.#confirmTimer ??= setTimeout(() => {
        this.#confirmTimer = undefined;
        this.confirmTaken();
      }, CONFIRM_MS);
    }
  }

  /** Confirms every FWD taken so far (before a graceful close, too). */
  confirmTaken(): void {
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = undefined;
    if (this.#taken === this.#takenConfirmed || !this.writer || this.session.conn.closeInfo) return;
    this.#takenConfirmed = this.#taken;
    this.send("RCVD", { count: this.#taken });
  }

  /** Tells the client about drops once its backlog has room again. */
  #reportLost(): void {
    if (this.#lostTimer) return;
    this.#lostTimer = setTimeout(() => {
      this.#lostTimer = undefined;
      if (!this.writer || this.session.conn.closeInfo) return;
      if (this.writer.backlog > this.maxBacklog / 2) return this.#reportLost();
      for (const [sid, count] of this.lost) {
        this.writer.write(busCodec.encode("LOST", { sid, count }));
      }
      this.lost.clear();
    }, RUNTIME.lostReportMs);
  }

  stop(): void {
    clearTimeout(this.#lostTimer);
    clearTimeout(this.#confirmTimer);
    clearTimeout(this.retiring?.timer);
  }
}

/** What the bus tells the node about. */
export interface BusHooks {
  /** A link is attached (for a route: after the route table kept it). */
  attached(link: BusLink): void;
  /** A link left the router; `replaced` when another route to the same peer took its place. */
  detached(link: BusLink, replaced: boolean): void;
  /** Decides about a new route before it is attached: false drops it (a duplicate). */
  admit(link: BusLink): boolean;
  /** A client's bus operation: null when allowed, else the refusal (the router's `authorize`). */
  authorize(link: BusLink, op: BusOperation, subject: string, queue?: string): string | null;
  /** The bus closes `s` for a protocol violation (a malformed frame, too many refusals). */
  misbehaved(s: PeerSession, why: string): void;
  /**
   * A session to node `id` for a shortcut: direct or punched (never relayed: a relay would carry
   * what the overlay's paths carry now, at its own cost), or undefined when there is none.
   */
  reach(id: string): Promise<PeerSession | undefined>;
  readonly log: Log;
}

/** The router and the links attached to it. */
export class Bus {
  readonly router: Router<BusLink>;
  readonly dropped: Dropped = {
    messages: 0,
    forwards: 0,
    closedBackedUp: 0,
    shed: 0,
    lostInRoute: 0,
  };
  /**
   * Routes let go (`retire`): `clean` closed once both ends had drained, `cut` closed at the
   * bound (`RUNTIME.retireMs`), what they held counted in `dropped.lostInRoute`.
   */
  readonly retired = { clean: 0, cut: 0 };
  /** Sessions closed for opening a channel their certificate does not allow. */
  refusedChannels = 0;
  /** Sessions closed for a malformed or misplaced bus frame, by frame (`frame`: the framing). */
  readonly malformed = new Map<string, number>();
  readonly #links = new Map<PeerSession, BusLink>();
  /** Shortcut links, by session (a session may carry a route or client link as well). */
  readonly #shortcuts = new Map<PeerSession, BusLink>();
  /** Shortcuts dialed (`made`), and dials that found no session or no direct one (`failed`). */
  readonly shortcutDials = { made: 0, failed: 0 };
  /** Routes and shortcuts this node is letting go, waiting to drain. */
  readonly #retiring = new Set<BusLink>();
  readonly #driver: Driver<RouterSend<BusLink>[]>;
  #ids = 1;

  constructor(
    readonly limits: NodeConfig["limits"],
    readonly maxBacklog: number,
    private readonly selfId: string,
    private readonly hooks: BusHooks,
    /** Mesh-wide routing: the realm, this node's signer, the check of others' records, admission. */
    routing: Pick<RouterOptions<BusLink>, "realm" | "signer" | "verify" | "admit" | "shortcuts"> =
      {},
  ) {
    this.router = new Router<BusLink>({
      random: Math.random,
      ...limits,
      ...routing,
      nodeId: selfId,
      epochMs: Date.now(),
      authorize: (link, op, subject, queue) => hooks.authorize(link, op, subject, queue),
    });
    this.#driver = new Driver(this.router, {
      act: (sends) => {
        for (const s of sends) s.to.send(s.name, s.fields);
        const plan = this.router.shortcutPlan();
        for (const id of plan.open) void this.#dialShortcut(id);
        for (const l of plan.close) this.retire(l, "shortcut no longer used");
        for (const l of this.#retiring) this.#retireDone(l);
      },
      unref: false,
      onError: (e) => hooks.log.error("router.error", `router: ${(e as Error).message}`),
    });
  }

  /** The route or client link of `s`, if it has one. */
  linkOf(s: PeerSession): BusLink | undefined {
    return this.#links.get(s);
  }

  /** The shortcut link of `s`, if it has one. */
  shortcutOf(s: PeerSession): BusLink | undefined {
    return this.#shortcuts.get(s);
  }

  /** Every link (routes, clients, shortcuts). */
  *links(): IterableIterator<BusLink> {
    yield* this.#links.values();
    yield* this.#shortcuts.values();
  }

  /** Queued outbound bytes over all links. */
  backlog(): number {
    let n = 0;
    for (const l of this.links()) n += l.writer?.backlog ?? 0;
    return n;
  }

  /** `s` closed: its links leave the router. */
  closed(s: PeerSession): void {
    const link = this.#links.get(s);
    if (link) this.detach(link);
    const sc = this.#shortcuts.get(s);
    if (sc) this.detach(sc);
  }

  /** The router asked for a shortcut to node `id`: a direct or punched session, and its channel. */
  async #dialShortcut(id: string): Promise<void> {
    let s: PeerSession | undefined;
    try {
      s = await this.hooks.reach(id);
    } catch (e) {
      this.hooks.log.debug(
        "shortcut.unreachable",
        `no shortcut to ${id.slice(0, 12)}…: ${(e as Error).message}`,
        { peer: id },
      );
    }
    if (!s || !s.conn.isOpen || s.closing || s.peer.nodeId !== id) {
      this.shortcutDials.failed++;
      return;
    }
    if (this.#shortcuts.has(s)) return; // the peer opened one meanwhile
    this.shortcutDials.made++;
    await this.#openShortcut(s, true);
  }

  /** Opens our shortcut channel on `s` and attaches it; past the node's bound, lets it go at once. */
  async #openShortcut(s: PeerSession, dialed: boolean): Promise<BusLink | undefined> {
    const link = this.#newLink(s, "node", dialed);
    link.shortcut = s.peer.nodeId.slice(0, SHORT_ID_CHARS);
    // The peer's channel is read from now on (a second one on this session is refused).
    link.reading = !dialed;
    // One shortcut per far node: a node with many sessions cannot take the room of others'.
    let twin = false;
    for (const other of this.#shortcuts.values()) if (other.shortcut === link.shortcut) twin = true;
    this.#shortcuts.set(s, link);
    let stream;
    try {
      stream = await s.openChannel(SHORTCUT_CHANNEL);
    } catch {
      this.detach(link);
      return undefined;
    }
    link.writer = new ChannelWriter(stream, () => void s.conn.close(0, "bus stream failed"));
    this.router.attach(link, monoNow());
    this.#driver.poke();
    link.markAttached();
    const max = 2 * this.router.shortcutLimit;
    if (!dialed && (this.#shortcuts.size > max || twin)) {
      this.refusedShortcuts++;
      this.retire(
        link,
        twin
          ? "this node holds a shortcut to that node already"
          : `this node holds ${max} shortcuts, its bound (twice overlay.shortcuts)`,
      );
    }
    return link;
  }

  /** Shortcuts peers opened past this node's bound (taken, and let go at once). */
  refusedShortcuts = 0;

  /** The peer opened its bus channel `name` on `s`: answer it, attach, and read its frames. */
  async onChannel(
    name: string,
    bodies: AsyncIterable<Uint8Array[]>,
    s: PeerSession,
  ): Promise<void> {
    if (name === SHORTCUT_CHANNEL) return await this.#onShortcut(bodies, s);
    let link = this.#links.get(s);
    if (!link) {
      if (name !== CLIENT_CHANNEL && name !== ROUTE_CHANNEL) {
        void s.conn.close(PROTOCOL_VIOLATION, `unknown channel ${name}`);
        return;
      }
      if (name === ROUTE_CHANNEL && s.peer.role !== "node") return this.#forbid(s, name, "routes");
      link = await this.open(s, name === CLIENT_CHANNEL ? "client" : "node", false);
      if (!link) return;
    }
    await link.attached;
    await this.#read(link, bodies);
    // The peer ended its channel (it let a route go whose session a shortcut still uses): ours ends.
    if (this.#holds(link) && link.session.conn.isOpen) this.#endChannel(link);
  }

  /** Closes a session whose certificate is not a node's for opening channel `name` (FORBIDDEN). */
  #forbid(s: PeerSession, name: string, what: string): void {
    this.refusedChannels++;
    const why =
      `channel ${name}: only nodes may open ${what} (this certificate is a ${s.peer.role}'s)`;
    this.hooks.log.warn("session.closed", `closing session with ${describe(s)}: ${why}`, {
      peer: s.peer.nodeId,
      cause: why,
    });
    void s.conn.close(FORBIDDEN, why);
  }

  /** The peer opened its shortcut channel: our answer to one of ours, or its own (answered). */
  async #onShortcut(bodies: AsyncIterable<Uint8Array[]>, s: PeerSession): Promise<void> {
    let link = this.#shortcuts.get(s);
    if (!link) {
      if (s.peer.role !== "node") return this.#forbid(s, SHORTCUT_CHANNEL, "shortcuts");
      link = await this.#openShortcut(s, false); // marked `reading` before its first await
      if (!link) return;
    } else if (link.reading) {
      void s.conn.close(PROTOCOL_VIOLATION, `a second ${SHORTCUT_CHANNEL} channel on one session`);
      return;
    } else link.reading = true;
    await link.attached;
    await this.#read(link, bodies);
    // The peer ended its channel (it let the shortcut go, or answered our letting go): ours ends.
    if (this.#shortcuts.get(s) === link) this.#endChannel(link);
  }

  /** Ends a link's channel (not the session, which may carry more) and takes it off the bus. */
  #endChannel(link: BusLink): void {
    if (link.writer && !link.session.conn.closeInfo) link.writer.end();
    this.detach(link);
  }

  /**
   * Closes a link this node let go: a shortcut's channel; a route's session, unless the session
   * carries this node's other link as well (a route and a shortcut to the same peer), then its
   * channel only.
   */
  #close(link: BusLink, reason: string): void {
    const other = link.shortcut !== undefined
      ? this.#links.get(link.session)
      : this.#shortcuts.get(link.session);
    if (link.shortcut !== undefined || other !== undefined) this.#endChannel(link);
    else void link.session.close(reason).catch(() => {});
  }

  #newLink(s: PeerSession, kind: "client" | "node", dialed: boolean): BusLink {
    return new BusLink(
      `${kind}:${this.#ids++}`,
      kind,
      s,
      dialed,
      this.maxBacklog,
      this.dropped,
      () => this.#checkBudget(),
      (l) => {
        const peer = l.session.peer.nodeId;
        this.hooks.log.warn(
          "message.dropped",
          `dropping messages to ${
            describe(l.session)
          }: ${l.backlog()} bytes queued to it, over the ${this.maxBacklog} it may hold (it reads too slowly)`,
          { peer, cause: `backed-up ${peer}` },
        );
      },
    );
  }

  /** Opens our channel on `s` and attaches the link to the router (a route: if admitted). */
  async open(
    s: PeerSession,
    kind: "client" | "node",
    dialed: boolean,
    seed = false,
  ): Promise<BusLink | undefined> {
    const link = this.#newLink(s, kind, dialed);
    link.seed = seed;
    if (kind === "node" && !this.hooks.admit(link)) return undefined;
    this.#links.set(s, link);
    let stream;
    try {
      stream = await s.openChannel(kind === "client" ? CLIENT_CHANNEL : ROUTE_CHANNEL);
    } catch {
      this.detach(link);
      return undefined;
    }
    link.writer = new ChannelWriter(stream, () => void s.conn.close(0, "bus stream failed"));
    if (kind === "client") {
      link.send("INFO", { node: this.selfId, max_payload: this.router.maxPayload });
    }
    this.router.attach(link);
    this.#driver.poke();
    link.markAttached();
    this.hooks.attached(link);
    return link;
  }

  /**
   * Lets a route go without loss: its paths become a last resort, the peer is told (RETIRE), and
   * the session closes with `reason` once both ends have drained, or after `RUNTIME.retireMs`.
   */
  retire(link: BusLink, reason: string): void {
    if (link.kind !== "node" || link.retiring || !this.#holds(link)) return;
    this.#startRetiring(link, true, reason);
  }

  /** The peer said RETIRE: it let the route go, or it answers ours. */
  #onRetire(link: BusLink): void {
    if (link.retiring) {
      link.retiring.answered = true;
      // Everything the peer sent before its answer is here: confirm it before the close.
      link.confirmTaken();
      return;
    }
    // The peer lets it go: take other paths, confirm what came, answer. The peer closes.
    this.#startRetiring(link, false, "the peer let this route go");
    link.confirmTaken();
    link.send("RETIRE", {});
  }

  #startRetiring(link: BusLink, mine: boolean, reason: string): void {
    const timer = setTimeout(() => {
      if (!link.retiring || link.session.conn.closeInfo) return;
      this.retired.cut++;
      this.hooks.log.info(
        "route.cut",
        `route to ${
          describe(link.session)
        } let go (${reason}): not drained within ${RUNTIME.retireMs} ms, closed`,
      );
      this.#close(link, reason);
    }, mine ? RUNTIME.retireMs : 2 * RUNTIME.retireMs);
    (timer as { unref?: () => void }).unref?.();
    link.retiring = { reason, answered: false, timer };
    this.router.retire(link, monoNow());
    this.#driver.poke(); // what the router queued goes out now, before RETIRE
    if (mine) {
      link.send("RETIRE", {});
      this.#retiring.add(link);
    }
  }

  /** Routes this node let go whose peer has answered, still draining (calls in flight over them). */
  get draining(): number {
    let n = 0;
    for (const l of this.#retiring) if (l.retiring?.answered) n++;
    return n;
  }

  /** Closes a route this node let go once its peer answered, all it sent is confirmed, no call is left. */
  #retireDone(link: BusLink): void {
    const r = link.retiring;
    if (!r?.answered || link.forwardsConfirmed < link.forwardsWritten) return;
    if (this.router.busy(link)) return;
    this.#retiring.delete(link);
    clearTimeout(r.timer);
    if (link.session.conn.closeInfo) return;
    this.retired.clean++;
    link.confirmTaken();
    this.#close(link, r.reason);
  }

  /** Takes a link from the router. `replaced`: another route to the same peer took its place. */
  detach(link: BusLink, replaced = false): void {
    if (!this.#holds(link)) return;
    if (link.shortcut !== undefined) this.#shortcuts.delete(link.session);
    else this.#links.delete(link.session);
    this.#retiring.delete(link);
    // A route we let go while its session is open: confirm what we took (its peer counts the rest).
    if (link.kind === "node") link.confirmTaken();
    link.stop();
    const lost = link.forwardsWritten - link.forwardsConfirmed;
    if (lost > 0) {
      this.dropped.lostInRoute += lost;
      this.hooks.log.warn(
        "route.lost",
        `route to ${
          describe(link.session)
        } went down with ${lost} forwarded messages its node never confirmed: counted as lost`,
      );
    }
    if (link.shortcut === undefined) this.hooks.detached(link, replaced);
    this.router.detach(link);
    this.#driver.poke();
  }

  /** Whether `link` is the bus's link of its session (its route, client or shortcut link). */
  #holds(link: BusLink): boolean {
    return (link.shortcut !== undefined ? this.#shortcuts : this.#links).get(link.session) === link;
  }

  /**
   * The node's budget for queued bytes over all links (`limits.max_queued_bytes`): past it, the
   * links holding the most are closed first (BACKED_UP), until the rest fit. Checked as a
   * backed-up link's queue grows (BusLink.send).
   */
  #checkBudget(): void {
    const links = [...this.links()].filter((l) => !l.session.conn.closeInfo);
    let total = 0;
    for (const l of links) total += l.writer?.backlog ?? 0;
    if (total <= this.limits.maxQueuedBytes) return;
    links.sort((a, b) => (b.writer?.backlog ?? 0) - (a.writer?.backlog ?? 0));
    for (const l of links) {
      if (total <= this.limits.maxQueuedBytes) break;
      const held = l.writer?.backlog ?? 0;
      total -= held;
      this.dropped.shed++;
      this.hooks.log.warn(
        "session.shed",
        `closing session with ${
          describe(l.session)
        }: ${held} bytes queued, the most while the node held ${
          total + held
        } (limits.max_queued_bytes ${this.limits.maxQueuedBytes})`,
      );
      void l.session.conn.close(
        BACKED_UP,
        `the node's queues are over their budget and this session held the most (${held} bytes)`,
      );
    }
  }

  /** Sends what the router queued outside a frame's handling (after `reauthorize`). */
  flush(): void {
    this.#driver.poke();
  }

  /** Confirms what every route took, then stops the timers (LOST, RCVD) and the router's. */
  stop(): void {
    for (const link of this.links()) {
      if (link.kind === "node") link.confirmTaken();
      link.stop();
    }
    this.#driver.stop();
  }

  async #read(link: BusLink, bodies: AsyncIterable<Uint8Array[]>): Promise<void> {
    try {
      for await (const batch of bodies) {
        if (!this.#holds(link)) return;
        try {
          const now = monoNow(); // one reading for the batch: it arrived at once
          for (const body of batch) {
            const f = busCodec.decodeBody(body);
            if ("unknown" in f) continue;
            if (link.kind === "node" && f.name === "RCVD") {
              link.confirmed(f.fields.count as number); // the link's accounting, not routing
              continue;
            }
            if (f.name === "RETIRE") {
              if (link.kind !== "node") {
                throw new ProtocolError("RETIRE: not allowed from a client on the bus");
              }
              this.#onRetire(link);
              continue;
            }
            this.router.receive(now, link, f);
            if (f.name === "FWD") link.took();
          }
        } finally {
          this.#driver.poke();
        }
      }
    } catch (e) {
      if (link.session.conn.closeInfo || !link.session.conn.isOpen) return;
      const why = e instanceof ProtocolError ? e.message : `protocol: ${(e as Error).message}`;
      const kind = e instanceof WireError
        ? e.frame
        : /^[A-Z_]+/.exec(why)?.[0] ?? (why.startsWith("too many") ? "refused-too-often" : "other");
      const key = this.malformed.has(kind) || this.malformed.size < 64 ? kind : "other";
      this.malformed.set(key, (this.malformed.get(key) ?? 0) + 1);
      this.hooks.log.warn(
        "session.closed",
        `closing session with ${describe(link.session)}: ${why}`,
        { peer: link.session.peer.nodeId, cause: why },
      );
      this.hooks.misbehaved(link.session, why);
      void link.session.conn.close(PROTOCOL_VIOLATION, why.slice(0, 200));
    }
  }
}

/** A peer for the log: its certificate name and the start of its node id. */
export function describe(s: PeerSession): string {
  return `${s.peer.name} ${s.peer.nodeId.slice(0, 12)}…`;
}
