/**
 * `macula pub`, `sub`, `call` and `serve`: thin shells over lib/client. Each connects to one
 * node (flags > MACULA_URL/MACULA_CREDS > context > default, see `resolveTarget`), does its
 * work, and closes cleanly. docs/cli.md is the guide.
 */
import { Command } from "@commander-js/extra-typings";
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import {
  decodeJson,
  JsonError,
  RPC_ERROR_CODES,
  RpcError,
  type RpcErrorCode,
} from "../../lib/messaging/mod.ts";
import {
  CliFailure,
  connectTo,
  FAILED,
  guarded,
  intArg,
  out,
  patternArg,
  procedureArg,
  queueArg,
  rateArg,
  readStdin,
  target,
  TARGET_HELP,
  topicArg,
  untilSignal,
  usage,
  withTarget,
} from "./shared.ts";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const looseUtf8 = new TextDecoder();
const err = (s: string) => process.stderr.write(`${s}\n`);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Throws a usage error unless `bytes` is JSON; `what` names the input. */
function mustBeJson(bytes: Uint8Array, what: string, hint: string): void {
  try {
    decodeJson(bytes);
  } catch (e) {
    if (e instanceof JsonError) {
      throw usage(`${what} is not JSON: ${e.message} (${hint})`);
    }
    throw e;
  }
}

// ---- pub -----------------------------------------------------------------------------------

const PUB_HINT = "leave out --json to send it as text";

/** Publishes are flushed (a round trip to the node) every this many, bounding what is queued. */
const PUB_FLUSH_EVERY = 1000;

function pubCommand() {
  return withTarget(
    new Command("pub")
      .description("publish a message to a topic (from an argument or stdin, one per line)")
      .argument("<topic>", "topic, e.g. sensors.kitchen.temp (no wildcards)", topicArg)
      .argument("[data]", "the message; '-' (or nothing, with stdin not a terminal) reads stdin")
      .option(
        "-n, --count <n>",
        "publish the data n times (with stdin: at most n lines)",
        intArg(1, 1_000_000_000),
      )
      .option(
        "-r, --rate <per-second>",
        "pace publishing at this many messages per second",
        rateArg,
      )
      .option("--json", "check that every message is valid JSON before sending it"),
  )
    .addHelpText(
      "after",
      `
Each stdin line (without its line break) is one message. Publishing is at most once: a
message nobody is subscribed to is dropped. The command ends after the node has received
every message, then prints "published N messages to <topic>" on stderr. Ctrl-C stops early:
what was already published is still delivered, and the exit code is 0.
${TARGET_HELP}

Examples:
  $ macula pub sensors.kitchen.temp 21.5
  $ macula pub events.test '{"n":1}' --json --count 100 --rate 10
  $ tail -f app.log | macula pub logs.app -
  $ macula pub greetings.en hello --server quic://10.0.0.7:4433 --creds ~/acme/laptop

Exit codes: 0 published, 1 failed (cannot connect, connection lost), 2 usage error (bad
topic, data not JSON with --json, bad option).`,
    )
    .action(guarded("macula pub", async (topic, data, opts) => {
      const fromStdin = data === "-" || (data === undefined && !process.stdin.isTTY);
      if (!fromStdin && data !== undefined && opts.json) {
        mustBeJson(utf8.encode(data), "data", PUB_HINT);
      }
      const t = target(opts);
      const stop = new AbortController();
      // A refusal (permission_denied, bad topic, too large) ends the run: exit 1 naming it.
      let refused: Error | undefined;
      const client = await connectTo("macula pub", t, opts, (e) => {
        refused ??= e;
        stop.abort();
      });
      let sent = 0;
      // Ctrl-C / SIGTERM: stop reading and publishing, deliver what was published, exit 0.
      const signal = untilSignal();
      void signal.done.then(() => stop.abort());
      try {
        const pace = pacer(opts.rate, stop.signal);
        const limit = opts.count ?? (fromStdin ? Infinity : 1);
        const one = async (bytes: Uint8Array) => {
          await pace();
          if (stop.signal.aborted) return;
          client.publish(topic, bytes);
          sent++;
          if (sent % PUB_FLUSH_EVERY === 0) await client.flush();
        };
        if (fromStdin) {
          const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
          stop.signal.addEventListener("abort", () => lines.close(), { once: true });
          let lineNo = 0;
          for await (const l of lines) {
            lineNo++;
            const bytes = utf8.encode(l);
            if (opts.json) mustBeJson(bytes, `stdin line ${lineNo}`, PUB_HINT);
            await one(bytes);
            if (sent >= limit || stop.signal.aborted) break;
          }
          lines.close();
          process.stdin.destroy();
        } else {
          const bytes = utf8.encode(data ?? "");
          while (sent < limit && !stop.signal.aborted) await one(bytes);
        }
        await client.flush();
      } finally {
        signal.cancel();
        await client.close();
        if (!refused) err(`published ${plural(sent, "message")} to ${topic}`);
      }
      if (refused) throw new CliFailure(refused.message);
    }));
}

/**
 * A function that waits until the next message is due at `rate` per second (none: no wait).
 * An abort ends the wait at once.
 */
function pacer(rate: number | undefined, signal: AbortSignal): () => Promise<void> {
  if (rate === undefined) return () => Promise.resolve();
  const interval = 1000 / rate;
  let next = performance.now();
  return async () => {
    const wait = next - performance.now();
    // After a stall, catch up by at most one interval instead of bursting.
    next = Math.max(next, performance.now() - interval) + interval;
    if (wait <= 0 || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const t = setTimeout(done, wait);
      signal.addEventListener("abort", done, { once: true });
    });
  };
}

// ---- sub -----------------------------------------------------------------------------------

/** One message as `sub --json` prints it. */
export function messageJson(topic: string, payload: Uint8Array): Record<string, unknown> {
  let text: string | null = null;
  try {
    text = strictUtf8.decode(payload);
  } catch {
    return { topic, base64: Buffer.from(payload).toString("base64"), bytes: payload.length };
  }
  let data: unknown = text;
  if (text.trim() !== "") {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  return { topic, data, bytes: payload.length };
}

function subCommand() {
  return withTarget(
    new Command("sub")
      .description("subscribe to a topic pattern and print each message")
      .argument("<pattern>", "topic pattern: '*' matches one segment, '>' the rest", patternArg)
      .option(
        "-q, --queue <group>",
        "join a queue group: each message goes to one member",
        queueArg,
      )
      .option("--json", "print one JSON object per message: {topic, data, bytes}")
      .option("--raw", "print only the payload of each message, then a line break")
      .option("-n, --count <n>", "exit after n messages", intArg(1, 1_000_000_000)),
  )
    .addHelpText(
      "after",
      `
Prints "[topic] text" per message on stdout (--raw: the payload only; --json: one object per
line, "data" holding the parsed JSON or the text, or "base64" for a payload that is not
UTF-8). "subscribed to <pattern> on <url>" goes to stderr once the node has the subscription;
reconnects are reported on stderr, and the subscription is restored after one.
Stop with Ctrl-C (exit 0), or let --count end it.
${TARGET_HELP}

Examples:
  $ macula sub '>'                                  everything in the realm
  $ macula sub 'sensors.*.temp' --json | jq .data
  $ macula sub orders.new --queue workers --count 1
  $ macula sub 'logs.>' --raw > all.log

Exit codes: 0 stopped (Ctrl-C or --count reached), 1 failed (cannot connect), 2 usage error
(bad pattern or queue group).`,
    )
    .action(guarded("macula sub", async (pattern, opts) => {
      if (opts.json && opts.raw) throw usage("--json and --raw: pick one");
      const t = target(opts);
      const client = await connectTo("macula sub", t, opts);
      const signal = untilSignal();
      try {
        const sub = client.subscribe(pattern, opts.queue ? { queue: opts.queue } : {});
        await client.flush();
        err(`subscribed to ${pattern}${opts.queue ? ` (queue ${opts.queue})` : ""} on ${t.url}`);
        void signal.done.then(() => sub.unsubscribe());
        let n = 0;
        for await (const m of sub) {
          if (opts.json) await out(`${JSON.stringify(messageJson(m.topic, m.payload))}\n`);
          else if (opts.raw) {
            await out(m.payload);
            await out("\n");
          } else await out(`[${m.topic}] ${looseUtf8.decode(m.payload)}\n`);
          if (opts.count !== undefined && ++n >= opts.count) break;
        }
        const st = sub.stats();
        if (st.dropped + st.droppedAtNode > 0) {
          err(
            `macula sub: ${plural(st.dropped + st.droppedAtNode, "message")} dropped because ` +
              `the output did not keep up (${st.dropped} here, ${st.droppedAtNode} at the node)`,
          );
        }
      } finally {
        signal.cancel();
        await client.close();
      }
    }));
}

// ---- call ----------------------------------------------------------------------------------

/** Exit code of `macula call` per RPC error code (1 stays "failed for another reason"). */
export const CALL_EXIT_CODES: Readonly<Record<RpcErrorCode, number>> = {
  no_provider: 3,
  timeout: 4,
  handler_error: 5,
  payload_too_large: 6,
  cancelled: 7,
  unavailable: 8,
  bad_request: 9,
  permission_denied: 10,
};

function callCommand() {
  const table = RPC_ERROR_CODES.map((c) => `  ${CALL_EXIT_CODES[c]}  ${c}`).join("\n");
  return withTarget(
    new Command("call")
      .description("call a procedure and print the reply")
      .argument("<procedure>", "procedure name, e.g. math.add", procedureArg)
      .argument("[payload]", "request payload, JSON unless --raw; '-' reads stdin")
      .option("-t, --timeout <ms>", "deadline for the reply", intArg(1, 3_600_000), 5000)
      .option("--raw", "send the payload as is (no JSON check) and print the reply as is"),
  )
    .addHelpText(
      "after",
      `
The reply goes to stdout: pretty-printed when it is JSON, else as text (--raw: the bytes as
they came). Without a payload the request is empty. Ctrl-C cancels the call. A failed call
prints "macula call: <code>: <message>" on stderr and exits with the code's number:
  0  the reply arrived
  1  failed otherwise (cannot connect, bad credentials)
  2  usage error (bad procedure name, payload not JSON)
${table}
${TARGET_HELP}

Examples:
  $ macula call math.add '{"a":1,"b":2}'
  $ echo '{"q":"x"}' | macula call search.query - --timeout 2000
  $ macula call files.get notes.txt --raw > notes.txt`,
    )
    .action(guarded("macula call", async (procedure, payload, opts) => {
      let bytes: Uint8Array;
      if (payload === "-") bytes = await readStdin(64 * 1024 * 1024);
      else bytes = utf8.encode(payload ?? "");
      if (!opts.raw && bytes.length > 0) {
        mustBeJson(bytes, payload === "-" ? "stdin" : "the payload", "use --raw to send it as is");
      }
      const t = target(opts);
      const client = await connectTo("macula call", t, opts);
      let reply: Uint8Array;
      // Ctrl-C / SIGTERM cancels the call (exit 7, cancelled).
      const cancel = new AbortController();
      const signal = untilSignal();
      void signal.done.then(() => cancel.abort());
      try {
        reply = await client.call(procedure, bytes, {
          timeoutMs: opts.timeout,
          signal: cancel.signal,
        });
      } catch (e) {
        if (e instanceof RpcError) {
          throw new CliFailure(e.message, CALL_EXIT_CODES[e.code] ?? FAILED, true);
        }
        throw e;
      } finally {
        signal.cancel();
        await client.close();
      }
      await out(opts.raw ? reply : formatReply(reply));
    }));
}

/** A reply for a person: pretty JSON, else the text; always ends with a line break. */
export function formatReply(reply: Uint8Array): string {
  let text: string;
  try {
    text = strictUtf8.decode(reply);
  } catch {
    return `(${reply.length} bytes, not UTF-8: use --raw to get them)\n`;
  }
  if (text.trim() !== "") {
    try {
      return `${JSON.stringify(JSON.parse(text), null, 2)}\n`;
    } catch {
      // not JSON: the text
    }
  }
  return text.endsWith("\n") || text === "" ? text : `${text}\n`;
}

// ---- serve ---------------------------------------------------------------------------------

/** Finds `cmd` on PATH (or checks it when it names a path); null when it cannot be run. */
function findExecutable(cmd: string): string | null {
  const ok = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes("/")) return ok(cmd) ? cmd : null;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && ok(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** Keeps the last `max` bytes written to it. */
class Tail {
  #buf = Buffer.alloc(0);
  constructor(private readonly max: number) {}
  push(c: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, c]);
    if (this.#buf.length > this.max) this.#buf = this.#buf.subarray(this.#buf.length - this.max);
  }
  lastLine(): string {
    const lines = this.#buf.toString("utf8").split("\n").map((l) => l.trim()).filter(Boolean);
    return lines[lines.length - 1] ?? "";
  }
}

/** Runs `argv` with `input` on stdin; resolves with its stdout, rejects with a one-line reason. */
export function runOnce(
  argv: readonly string[],
  input: Uint8Array,
  o: { timeoutMs: number; maxOutput: number; signal: AbortSignal },
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], shell: false });
    const chunks: Buffer[] = [];
    let size = 0;
    const stderr = new Tail(4096);
    let failure: string | null = null;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const kill = (why: string) => {
      if (failure !== null) return;
      failure = why;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), 1000);
    };
    const timer = setTimeout(() => kill(`${cmd} took longer than ${o.timeoutMs} ms`), o.timeoutMs);
    const onAbort = () => kill("cancelled by the caller");
    o.signal.addEventListener("abort", onAbort, { once: true });
    if (o.signal.aborted) onAbort();
    child.stdout.on("data", (c: Buffer) => {
      size += c.length;
      if (size > o.maxOutput) {
        kill(`${cmd} wrote more than ${o.maxOutput} bytes, the payload limit`);
      } else chunks.push(c);
    });
    child.stderr.on("data", (c: Buffer) => stderr.push(c));
    child.stdin.on("error", () => {}); // the command may exit without reading its input
    child.stdin.end(input);
    const done = () => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      o.signal.removeEventListener("abort", onAbort);
    };
    child.on("error", (e) => {
      done();
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on("close", (code, sig) => {
      done();
      if (failure !== null) return reject(new Error(failure));
      if (code === 0) return resolve(new Uint8Array(Buffer.concat(chunks)));
      const last = stderr.lastLine();
      const how = code !== null ? `exit code ${code}` : `signal ${sig}`;
      reject(new Error(last ? `${last} (${cmd}: ${how})` : `${cmd} failed with ${how}`));
    });
  });
}

/** Runs at most `limit` tasks at once; the rest wait in order (or give up when aborted). */
class Gate {
  #running = 0;
  readonly #waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener("abort", stop);
          resolve();
        };
        const stop = () => {
          const i = this.#waiting.indexOf(go);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(new Error("cancelled by the caller while waiting for a free slot"));
        };
        signal.addEventListener("abort", stop, { once: true });
        this.#waiting.push(go);
      });
    }
    this.#running++;
    try {
      return await task();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}

function serveCommand() {
  return withTarget(
    new Command("serve")
      .description("answer calls to a procedure: echo them, or run a command per call")
      .usage("<procedure> (--echo | -- <command> [args...]) [options]")
      .argument("<procedure>", "procedure name, e.g. math.add", procedureArg)
      .argument("[command...]", "after '--': the command to run per call, and its arguments")
      .option("--echo", "reply with the request payload")
      .option("-v, --verbose", "log every call on stderr (size, outcome, duration)")
      .option(
        "-t, --timeout <ms>",
        "longest a command may run per call; then it is killed",
        intArg(1, 3_600_000),
        30_000,
      )
      .option(
        "-c, --concurrency <n>",
        "commands running at once; further calls wait",
        intArg(1, 1024),
        8,
      ),
  )
    .addHelpText(
      "after",
      `
With a command, each call starts it (no shell) with the request payload on stdin; its stdout
is the reply. A non-zero exit answers the caller with handler_error carrying the last line
the command wrote to stderr. A command is killed (SIGTERM, then SIGKILL) when the caller
cancels or its deadline passes, or after --timeout. Several 'macula serve' processes may serve
one procedure; each call goes to one of them.
Options go before '--'; everything after it is the command. "serving <procedure> on <url>"
goes to stderr once the node has the registration; a failed call is logged there too. Stop
with Ctrl-C (exit 0): calls in flight are cancelled and their commands killed.
${TARGET_HELP}

Examples:
  $ macula serve echo.test --echo --verbose
  $ macula serve text.upper -- tr a-z A-Z
  $ macula serve math.add -- jq -c '{sum: (.a + .b)}'
  $ macula serve files.get -- sh -c 'cat "$(cat)"'      a shell only when you ask for one

Exit codes: 0 stopped (Ctrl-C), 1 failed (cannot connect), 2 usage error (bad procedure name,
neither or both of --echo and a command, command not found).`,
    )
    .action(guarded("macula serve", async (procedure, command, opts) => {
      if (opts.echo && command.length > 0) throw usage("--echo and a command: pick one");
      if (!opts.echo && command.length === 0) {
        throw usage(
          "say how to answer: --echo, or a command after '--' (e.g. macula serve " +
            `${procedure} -- cat)`,
        );
      }
      if (command.length > 0 && findExecutable(command[0]!) === null) {
        throw usage(`command not found or not executable: ${command[0]}`);
      }
      const t = target(opts);
      const client = await connectTo("macula serve", t, opts);
      const signal = untilSignal();
      try {
        const gate = new Gate(opts.concurrency);
        let calls = 0;
        const reg = client.serve(procedure, async (payload, ctx) => {
          const n = ++calls;
          const t0 = performance.now();
          const took = () => `${(performance.now() - t0).toFixed(1)} ms`;
          if (opts.verbose) err(`macula serve: ${procedure}: call ${n}: ${payload.length} bytes`);
          try {
            const reply = opts.echo ? payload : await gate.run(
              ctx.signal,
              () =>
                runOnce(command, payload, {
                  timeoutMs: opts.timeout,
                  maxOutput: client.maxPayload,
                  signal: ctx.signal,
                }),
            );
            if (opts.verbose) {
              err(
                `macula serve: ${procedure}: call ${n}: replied ${reply.length} bytes in ${took()}`,
              );
            }
            return reply;
          } catch (e) {
            err(`macula serve: ${procedure}: call ${n}: ${(e as Error).message} (${took()})`);
            throw e;
          }
        });
        await reg.ready;
        err(`serving ${procedure} on ${t.url}`);
        const sig = await signal.done;
        err(`macula serve: ${sig}: stopping`);
        reg.stop();
      } finally {
        signal.cancel();
        await client.close();
      }
    }));
}

/** The messaging commands, in the order `macula --help` lists them. */
export function messagingCommands(): Command[] {
  return [pubCommand(), subCommand(), callCommand(), serveCommand()].map((c) =>
    c.helpGroup("Messaging:") as unknown as Command
  );
}
