/**
 * Links: a session's bus channel as the router sees it (`BusLink`), and the `Bus` that attaches
 * links to the router, reads their frames into it, and sends what it drains.
 *
 * - A client opens channel `client`, a peer node channel `route`; the node answers with its own
 *   channel of the same name (a dialer has opened its own already), then the router takes the
 *   link.
 * - Backpressure: messages (MSG, FWD) to a link whose stream is backed up past `maxBacklog` are
 *   dropped and counted per subscription; the client is told how many (`LOST`) once the backlog
 *   drains. Control frames are never dropped.
 * - A frame that breaks the protocol closes the session (PROTOCOL_VIOLATION) with the reason.
 */
import {
  busCodec,
  CLIENT_CHANNEL,
  type Link,
  ProtocolError,
  ROUTE_CHANNEL,
  Router,
  type RouterSend,
} from "../messaging/mod.ts";
import { ChannelWriter, type PeerSession } from "../peer/mod.ts";
import { Driver, monoNow } from "../util/mod.ts";
import { RUNTIME } from "./defaults.ts";

/** Application close code for a session closed because the peer broke the protocol. */
export const PROTOCOL_VIOLATION = 0x12;

/** Messages dropped because a link was backed up (shared by every link of a node). */
export interface Dropped {
  messages: number;
  forwards: number;
}

/** One session's bus channel. */
export class BusLink implements Link {
  writer: ChannelWriter | null = null;
  /** A route to a configured seed (`join`): kept whatever the overlay prefers. */
  seed = false;
  /** Resolves once the router has the link (frames are read only after that). */
  readonly attached: Promise<void>;
  markAttached!: () => void;
  /** Messages dropped per subscription id since the last LOST. */
  readonly lost = new Map<number, number>();
  #lostTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly id: string,
    readonly kind: "client" | "node",
    readonly session: PeerSession,
    readonly dialed: boolean,
    private readonly maxBacklog: number,
    private readonly dropped: Dropped,
  ) {
    this.attached = new Promise((r) => (this.markAttached = r));
  }

  /** Queues one bus frame; a message to a backed-up link is dropped and counted instead. */
  send(name: string, fields: Record<string, unknown>): void {
    const w = this.writer;
    if (!w) return;
    if (name === "MSG" || name === "FWD") {
      if (w.backlog > this.maxBacklog) {
        if (name === "MSG") {
          const sid = fields.sid as number;
          this.lost.set(sid, (this.lost.get(sid) ?? 0) + 1);
          this.dropped.messages++;
          this.#reportLost();
        } else this.dropped.forwards++;
        return;
      }
    }
    w.write(busCodec.encode(name, fields));
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
  log(line: string): void;
}

/** The router and the links attached to it. */
export class Bus {
  readonly router: Router<BusLink>;
  readonly dropped: Dropped = { messages: 0, forwards: 0 };
  readonly #links = new Map<PeerSession, BusLink>();
  readonly #driver: Driver<RouterSend<BusLink>[]>;
  #ids = 1;

  constructor(
    readonly maxPayload: number,
    readonly maxBacklog: number,
    private readonly selfId: string,
    private readonly hooks: BusHooks,
  ) {
    this.router = new Router<BusLink>({ random: Math.random, maxPayload });
    this.#driver = new Driver(this.router, {
      act: (sends) => {
        for (const s of sends) s.to.send(s.name, s.fields);
      },
      unref: false,
      onError: (e) => hooks.log(`router: ${(e as Error).message}`),
    });
  }

  /** The link of `s`, if it has one. */
  linkOf(s: PeerSession): BusLink | undefined {
    return this.#links.get(s);
  }

  /** Every link. */
  links(): IterableIterator<BusLink> {
    return this.#links.values();
  }

  /** Queued outbound bytes over all links. */
  backlog(): number {
    let n = 0;
    for (const l of this.#links.values()) n += l.writer?.backlog ?? 0;
    return n;
  }

  /** The peer opened its bus channel `name` on `s`: answer it, attach, and read its frames. */
  async onChannel(
    name: string,
    bodies: AsyncIterable<Uint8Array[]>,
    s: PeerSession,
  ): Promise<void> {
    let link = this.#links.get(s);
    if (!link) {
      if (name !== CLIENT_CHANNEL && name !== ROUTE_CHANNEL) {
        void s.conn.close(PROTOCOL_VIOLATION, `unknown channel ${name}`);
        return;
      }
      link = await this.open(s, name === CLIENT_CHANNEL ? "client" : "node", false);
      if (!link) return;
    }
    await link.attached;
    await this.#read(link, bodies);
  }

  /** Opens our channel on `s` and attaches the link to the router (a route: if admitted). */
  async open(
    s: PeerSession,
    kind: "client" | "node",
    dialed: boolean,
    seed = false,
  ): Promise<BusLink | undefined> {
    const link = new BusLink(
      `${kind}:${this.#ids++}`,
      kind,
      s,
      dialed,
      this.maxBacklog,
      this.dropped,
    );
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

  /** Takes a link from the router. `replaced`: another route to the same peer took its place. */
  detach(link: BusLink, replaced = false): void {
    if (this.#links.get(link.session) !== link) return;
    this.#links.delete(link.session);
    link.stop();
    this.hooks.detached(link, replaced);
    this.router.detach(link);
    this.#driver.poke();
  }

  /** Stops the LOST timers and the router's timer. */
  stop(): void {
    for (const link of this.#links.values()) link.stop();
    this.#driver.stop();
  }

  async #read(link: BusLink, bodies: AsyncIterable<Uint8Array[]>): Promise<void> {
    try {
      for await (const batch of bodies) {
        if (this.#links.get(link.session) !== link) return;
        try {
          for (const body of batch) {
            const f = busCodec.decodeBody(body);
            if ("unknown" in f) continue;
            this.router.receive(monoNow(), link, f);
          }
        } finally {
          this.#driver.poke();
        }
      }
    } catch (e) {
      if (link.session.conn.closeInfo || !link.session.conn.isOpen) return;
      const why = e instanceof ProtocolError ? e.message : `protocol: ${(e as Error).message}`;
      this.hooks.log(`closing session with ${describe(link.session)}: ${why}`);
      void link.session.conn.close(PROTOCOL_VIOLATION, why.slice(0, 200));
    }
  }
}

/** A peer for the log: its certificate name and the start of its node id. */
export function describe(s: PeerSession): string {
  return `${s.peer.name} ${s.peer.nodeId.slice(0, 12)}…`;
}
