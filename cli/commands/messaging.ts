/**
 * `macula pub`, `sub`, `call` and `serve`: thin shells over lib/client. Each connects to one
 * node (--server, --context, MACULA_URL/MACULA_CREDS, the current context, the default: see
 * `resolveTarget`), does its work, and closes cleanly. docs/cli.md is the guide.
 *
 * One rule for stopping, across the four: a closed stdout (`| head -1`) ends a command quietly
 * with exit 0; SIGINT, SIGTERM, SIGHUP or SIGQUIT stops it cleanly within a second (a second
 * signal at once, 128 + its number). A command whose job is to run until stopped (`sub` and
 * `serve` without --count) then exits 0; one stopped before its job was done (`pub` before the
 * last message, `call` before the reply, `sub`/`serve` before --count) exits 128 + the signal:
 * 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP.
 */
import { Command, Option } from "@commander-js/extra-typings";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import process from "node:process";
import {
  decodeJson,
  JsonError,
  MAX_PAYLOAD_LIMIT,
  RPC_ERROR_CODES,
  RpcError,
  type RpcErrorCode,
} from "../../lib/messaging/mod.ts";
import { type CallContext, ClientError } from "../../lib/client/mod.ts";
import { OutputTooLarge, runOnce } from "./proc.ts";
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
  signalExitCode,
  stdinLines,
  StdoutClosed,
  STOP_GRACE_MS,
  type StopSignal,
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
/** Milliseconds since `t0`, to a tenth. */
const since = (t0: number) => Math.round((performance.now() - t0) * 10) / 10;

/** The stopping rule, for --help (docs/cli.md, "Stopping", says the same). */
const STOP_HELP =
  `A closed stdout (the reader went away, e.g. '| head -1') ends the command quietly, exit 0.
Ctrl-C (SIGINT), SIGTERM, a hangup (SIGHUP: the terminal or ssh session went away) or SIGQUIT
stops it cleanly within a second; a second Ctrl-C ends it at once (130).`;

/**
 * Wraps a command body like `guarded`, and ends it quietly with exit 0 when its reader closed
 * stdout (`StdoutClosed`): the body's own clean-up has run; the process exits within
 * `STOP_GRACE_MS` even if something still holds it.
 */
function action<A extends unknown[]>(prefix: string, body: (...args: A) => Promise<void>) {
  return guarded(prefix, async (...args: A) => {
    // A closed stderr is no reason to crash either: the lines are lost, the command goes on.
    if (process.stderr.listenerCount("error") === 0) process.stderr.on("error", () => {});
    try {
      await body(...args);
    } catch (e) {
      if (!(e instanceof StdoutClosed)) throw e;
      setTimeout(() => process.exit(process.exitCode ?? 0), STOP_GRACE_MS).unref();
    }
  });
}

/**
 * The failure of a command stopped by `sig` before its job was done: "stopped by SIGINT" and
 * `what` (which starts with its own separator), exit 128 + the signal.
 */
const stoppedBy = (sig: StopSignal, what: string) =>
  new CliFailure(`stopped by ${sig}${what}`, signalExitCode(sig));

/** Throws a usage error unless `bytes` is JSON; `what` names the input, `hint` the way out. */
function mustBeJson(bytes: Uint8Array, what: string, hint: string): void {
  try {
    decodeJson(bytes);
  } catch (e) {
    if (e instanceof JsonError) throw usage(`${what} is not JSON: ${e.message}\n  ${hint}`);
    throw e;
  }
}

/** A payload for JSON output: `data` (parsed JSON, else the text) or `base64` (not UTF-8). */
function payloadFields(payload: Uint8Array): { data: unknown } | { base64: string } {
  let text: string;
  try {
    text = strictUtf8.decode(payload);
  } catch {
    return { base64: Buffer.from(payload).toString("base64") };
  }
  if (text.trim() !== "") {
    try {
      return { data: JSON.parse(text) };
    } catch {
      // not JSON: the text
    }
  }
  return { data: text };
}

// ---- pub -----------------------------------------------------------------------------------

const PUB_HINT = "leave out --input json to send it as text";

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
      .option(
        "-t, --timeout <ms>",
        "deadline for the node to confirm what was published",
        intArg(1, 3_600_000),
        10_000,
      )
      .addOption(
        new Option("--input <format>", "json: refuse (exit 2) a message that is not JSON")
          .choices(["text", "json"] as const)
          .default("text" as const),
      ),
  )
    .addHelpText(
      "after",
      `
Each stdin line is one message: its bytes as they are (binary too), without the line feed
(a '\r' before it stays). Publishing is at most once: a message nobody is subscribed to is
dropped. The command ends after the node has confirmed every message, then prints "published
N messages to <topic>" on stderr; no confirmation within --timeout (also asked every 1000
messages) fails it, exit 1. A message over the node's payload limit ends it with that error
alone (exit 1); the messages before it were sent.
Ctrl-C stops early: what was already published is still delivered, then "macula pub: stopped
by SIGINT after publishing N messages to <topic>", exit 130.

${STOP_HELP}
${TARGET_HELP}

Examples:
  $ macula pub sensors.kitchen.temp 21.5
  $ macula pub events.test '{"n":1}' --input json --count 100 --rate 10
  $ tail -f app.log | macula pub logs.app -
  $ macula pub greetings.en hello --server quic://10.0.0.7:4433 --creds ~/acme/laptop

Exit codes: 0 published, 1 failed (cannot connect, connection lost, refused by the node, a
message over its payload limit, --timeout passed), 2 usage error (bad topic, not JSON with
--input json, bad option), 130 stopped by Ctrl-C (143 SIGTERM, 129 SIGHUP) before the last
message.`,
    )
    .action(action("macula pub", async (topic, data, opts) => {
      const json = opts.input === "json";
      const fromStdin = data === "-" || (data === undefined && !process.stdin.isTTY);
      if (!fromStdin && data !== undefined && json) {
        mustBeJson(utf8.encode(data), "the data", PUB_HINT);
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
      // Ctrl-C / SIGTERM: stop reading and publishing, deliver what was published, exit 130.
      const signal = untilSignal({ prefix: "macula pub", exitCode: signalExitCode });
      void signal.done.then(() => stop.abort());
      try {
        const pace = pacer(opts.rate, stop.signal);
        const limit = opts.count ?? (fromStdin ? Infinity : 1);
        const tooLarge = (what: string, length: number) =>
          new CliFailure(
            `${what} is ${length} bytes, over the node's payload limit of ${client.maxPayload}`,
          );
        // The node confirms what it got within --timeout, or the run fails.
        const flush = async () => {
          try {
            await client.flush(opts.timeout);
          } catch (e) {
            if (!(e instanceof ClientError && e.code === "timeout")) throw e;
            throw new CliFailure(
              `timeout: the node did not confirm the ${plural(sent, "message")} published to ` +
                `${topic} within ${opts.timeout} ms`,
            );
          }
        };
        const one = async (bytes: Uint8Array, what: string) => {
          if (bytes.length > client.maxPayload) throw tooLarge(what, bytes.length);
          await pace();
          if (stop.signal.aborted) return;
          client.publish(topic, bytes);
          sent++;
          if (sent % PUB_FLUSH_EVERY === 0) await flush();
        };
        if (fromStdin) {
          let lineNo = 0;
          for await (const l of stdinLines(client.maxPayload, stop.signal)) {
            lineNo++;
            const what = `stdin line ${lineNo}`;
            if (l.bytes === null) throw tooLarge(what, l.length);
            if (json) mustBeJson(l.bytes, what, PUB_HINT);
            await one(l.bytes, what);
            if (sent >= limit || stop.signal.aborted) break;
          }
        } else {
          const bytes = utf8.encode(data ?? "");
          while (sent < limit && !stop.signal.aborted) await one(bytes, "the message");
        }
        await flush();
      } finally {
        signal.cancel();
        await client.close();
      }
      if (refused) throw new CliFailure(refused.message);
      const published = `${plural(sent, "message")} to ${topic}`;
      if (signal.received) throw stoppedBy(signal.received, ` after publishing ${published}`);
      err(`published ${published}`);
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

/** One message as `sub --json` prints it: {topic, data, bytes}, or base64 for binary. */
export function messageJson(topic: string, payload: Uint8Array): Record<string, unknown> {
  return { topic, ...payloadFields(payload), bytes: payload.length };
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
      .option("-n, --count <n>", "exit after n messages", intArg(1, 1_000_000_000))
      .option(
        "-t, --timeout <ms>",
        "stop this long after subscribing (with --count: fail, exit 1, unless all n came)",
        intArg(1, 2_147_483_647),
      ),
  )
    .addHelpText(
      "after",
      `
Prints "[topic] text" per message on stdout (--raw: the payload only, then a line break;
--json: one object per line, "data" holding the parsed JSON or the text, or "base64" for a
payload that is not UTF-8). "subscribed to <pattern> on <url>" goes to stderr once the node
has the subscription; reconnects are reported on stderr, and the subscription is restored
after one. Stop with Ctrl-C (exit 0), or let --count end it; Ctrl-C before --count messages
came exits 130. --timeout bounds the wait, counted from the "subscribed to" line: without
--count, sub stops then, exit 0; with --count, the n messages not all in by then is a
failure, "macula sub: timeout: k of n messages within <ms> ms", exit 1. Messages the output
could not keep up with are counted on stderr at the end.

${STOP_HELP}
${TARGET_HELP}

Examples:
  $ macula sub '>'                                  everything in the realm
  $ macula sub 'sensors.*.temp' --json | jq .data
  $ macula sub orders.new --queue workers --count 1
  $ macula sub jobs.done --count 3 --timeout 10000     exit 1 unless 3 came within 10 s
  $ macula sub 'logs.>' --raw > all.log
  $ macula sub 'pp.*' | head -1                     the first message, then exit 0

Exit codes: 0 stopped (Ctrl-C, SIGTERM, SIGHUP, --count reached, --timeout without --count,
stdout closed), 1 failed (cannot connect, --timeout before --count messages came), 2 usage
error (bad pattern or queue group), 130 Ctrl-C (143 SIGTERM, 129 SIGHUP) before --count
messages came.`,
    )
    .action(action("macula sub", async (pattern, opts) => {
      if (opts.json && opts.raw) throw usage("--json and --raw: pick one");
      const t = target(opts);
      const client = await connectTo("macula sub", t, opts);
      const count = opts.count;
      const signal = untilSignal({
        prefix: "macula sub",
        exitCode: (sig) => count === undefined ? 0 : signalExitCode(sig),
      });
      let n = 0;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let timedOut = false;
      try {
        const sub = client.subscribe(pattern, opts.queue ? { queue: opts.queue } : {});
        await client.flush();
        err(`subscribed to ${pattern}${opts.queue ? ` (queue ${opts.queue})` : ""} on ${t.url}`);
        void signal.done.then(() => sub.unsubscribe());
        if (opts.timeout !== undefined) {
          timer = setTimeout(() => {
            timedOut = true;
            sub.unsubscribe();
          }, opts.timeout);
        }
        for await (const m of sub) {
          if (opts.json) await out(`${JSON.stringify(messageJson(m.topic, m.payload))}\n`);
          else if (opts.raw) {
            await out(m.payload);
            await out("\n");
          } else await out(`[${m.topic}] ${looseUtf8.decode(m.payload)}\n`);
          if (count !== undefined && ++n >= count) break;
        }
        const st = sub.stats();
        if (st.dropped + st.droppedAtNode > 0) {
          err(
            `macula sub: ${plural(st.dropped + st.droppedAtNode, "message")} dropped because ` +
              `the output did not keep up (${st.dropped} here, ${st.droppedAtNode} at the node)`,
          );
        }
      } finally {
        clearTimeout(timer);
        signal.cancel();
        await client.close();
      }
      if (signal.received && count !== undefined && n < count) {
        throw stoppedBy(signal.received, ` after ${n} of ${plural(count, "message")}`);
      }
      if (timedOut && count !== undefined && n < count) {
        throw new CliFailure(
          `timeout: ${n} of ${plural(count, "message")} within ${opts.timeout} ms`,
        );
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

/** What each code means to someone running `macula call`. */
const CALL_EXIT_MEANING: Readonly<Record<RpcErrorCode, string>> = {
  no_provider: "no node serves the procedure",
  timeout: "no reply before --timeout",
  handler_error: "the provider failed; the message is its own",
  payload_too_large: "the request or the reply is over the node's payload limit",
  cancelled: "the call was cancelled",
  unavailable: "the provider or the connection went away before replying",
  bad_request: "the node refused the call as malformed",
  permission_denied: "the caller's certificate groups may not call it",
};

/** A call's reply as `call --json` prints it. */
export function replyJson(procedure: string, reply: Uint8Array, ms: number) {
  return { procedure, ...payloadFields(reply), bytes: reply.length, ms };
}

function callCommand() {
  // Ctrl-C is 130 here, like everywhere: `cancelled` (7) is what a library caller gets.
  const table = RPC_ERROR_CODES.filter((c) => c !== "cancelled")
    .map((c) =>
      `  ${String(CALL_EXIT_CODES[c]).padStart(2)}  ${c.padEnd(18)}${CALL_EXIT_MEANING[c]}`
    )
    .join("\n");
  return withTarget(
    new Command("call")
      .description("call a procedure and print the reply")
      .argument("<procedure>", "procedure name, e.g. math.add", procedureArg)
      .argument("[payload]", "request payload, JSON unless --raw; '-' reads stdin")
      .option("-t, --timeout <ms>", "deadline for each reply", intArg(1, 3_600_000), 5000)
      .option("-n, --count <n>", "call n times, one after another", intArg(1, 1_000_000), 1)
      .option("--json", "print each reply as one JSON object: {procedure, data, bytes, ms}")
      .option(
        "--raw",
        "send the payload as is (no JSON check); print the reply as is, then a line break",
      ),
  )
    .addHelpText(
      "after",
      `
The reply goes to stdout: pretty-printed when it is JSON, else as text (--raw: its bytes, then
a line break; --json: {"procedure", "data" (the parsed JSON or the text, or "base64" when it
is not UTF-8), "bytes", "ms"} on one line). Without a payload the request is empty. A failed
call prints "macula call: <code>: <message>" on stderr and exits with the code's number;
with --count the first failure ends the run. Ctrl-C cancels the call (the provider is told)
and exits 130.

${STOP_HELP}
${TARGET_HELP}

Examples:
  $ macula call math.add '{"a":1,"b":2}'
  $ echo '{"q":"x"}' | macula call search.query - --timeout 2000
  $ macula call text.upper hello --raw
  $ macula call math.add '{"a":1,"b":2}' --json | jq .ms

Exit codes:
   0  the reply arrived (every reply, with --count)
   1  failed otherwise (cannot connect, bad credentials)
   2  usage error (bad procedure name, payload not JSON, bad option)
${table}
 130  stopped by Ctrl-C (143 by SIGTERM); the call was cancelled`,
    )
    .action(action("macula call", async (procedure, payload, opts) => {
      if (opts.json && opts.raw) throw usage("--json and --raw: pick one");
      let bytes: Uint8Array;
      if (payload === "-") {
        bytes = await readStdin(MAX_PAYLOAD_LIMIT, "more than any node accepts");
      } else bytes = utf8.encode(payload ?? "");
      if (!opts.raw && bytes.length > 0) {
        mustBeJson(bytes, payload === "-" ? "stdin" : "the payload", "use --raw to send it as is");
      }
      const t = target(opts);
      const client = await connectTo("macula call", t, opts);
      // Ctrl-C / SIGTERM cancels the call in flight: exit 130 / 143.
      const cancel = new AbortController();
      const signal = untilSignal({ prefix: "macula call", exitCode: signalExitCode });
      void signal.done.then(() => cancel.abort());
      try {
        const cancelled = (sig: StopSignal, i: number) =>
          stoppedBy(
            sig,
            `: the call was cancelled${
              opts.count > 1 ? ` (${i} of ${plural(opts.count, "call")} done)` : ""
            }`,
          );
        for (let i = 0; i < opts.count; i++) {
          if (signal.received) throw cancelled(signal.received, i);
          const t0 = performance.now();
          let reply: Uint8Array;
          try {
            reply = await client.call(procedure, bytes, {
              timeoutMs: opts.timeout,
              signal: cancel.signal,
            });
          } catch (e) {
            if (signal.received) throw cancelled(signal.received, i);
            if (e instanceof RpcError) {
              throw new CliFailure(e.message, CALL_EXIT_CODES[e.code] ?? FAILED);
            }
            throw e;
          }
          if (opts.json) await out(`${JSON.stringify(replyJson(procedure, reply, since(t0)))}\n`);
          else if (opts.raw) {
            await out(reply);
            await out("\n");
          } else await out(formatReply(reply));
        }
      } finally {
        signal.cancel();
        await client.close();
      }
    }));
}

/** A reply for a person: pretty JSON, else the text; always ends with a line break. */
export function formatReply(reply: Uint8Array): string {
  let text: string;
  try {
    text = strictUtf8.decode(reply);
  } catch {
    return `(${reply.length} bytes, not UTF-8: use --raw or --json to get them)\n`;
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

/** Why a task gave up waiting: the signal's reason when a string, else the caller cancelled. */
const abortReason = (signal: AbortSignal) =>
  typeof signal.reason === "string" ? signal.reason : "cancelled by the caller";

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
          reject(new Error(`${abortReason(signal)} while waiting for a free slot`));
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

/** Why `serve` ends: a signal, --count calls answered, or stdout gone (or failed). */
type ServeEnd = { signal: StopSignal } | { count: true } | { output: Error };

function serveCommand() {
  return withTarget(
    new Command("serve")
      .description("answer calls to a procedure: echo them, or run a command per call")
      .usage("<procedure> (--echo | -- <command> [args...]) [options]")
      .argument("<procedure>", "procedure name, e.g. math.add", procedureArg)
      .argument("[command...]", "after '--': the command to run per call, and its arguments")
      .option("--echo", "reply with the request payload")
      .option("-v, --verbose", "log every call (size, outcome, duration), not only failures")
      .option("--json", "log as JSON objects on stdout, one per line (see below)")
      .option(
        "-t, --timeout <ms>",
        "longest a command may run per call; then it is killed",
        intArg(1, 3_600_000),
        30_000,
      )
      .option(
        "--concurrency <n>",
        "commands running at once; further calls wait",
        intArg(1, 1024),
        8,
      )
      .option("-n, --count <n>", "exit after answering n calls", intArg(1, 1_000_000_000)),
  )
    .addHelpText(
      "after",
      `
With a command, each call starts it (no shell) with the request payload on stdin; its stdout
is the reply. A non-zero exit answers the caller with handler_error carrying the last line
the command wrote to stderr; output over the node's payload limit answers payload_too_large.
Each command runs in a process group of its own, and the whole group is killed (SIGTERM, then
SIGKILL after 0.5 s) when the command exits, when the caller cancels or its deadline passes,
after --timeout, and when serve stops: nothing it started is left running.
Several 'macula serve' processes may serve one procedure; each call goes to one of them.
Options go before '--'; everything after it is the command.

"serving <procedure> on <url>" goes to stderr once the node has the registration; failed
calls are logged there too, and with -v every call. --json logs the same events on stdout
instead, one JSON object per line (reconnects and errors stay on stderr):
  {"event":"serving","procedure":"t.x","url":"quic://127.0.0.1:4433"}
  {"event":"call","procedure":"t.x","call":1,"bytes":4}                  (-v)
  {"event":"reply","procedure":"t.x","call":1,"bytes":8,"ms":3.1}        (-v)
  {"event":"failed","procedure":"t.x","call":2,"error":"broken (sh: exit code 3)","ms":2.7}
  {"event":"stopping","procedure":"t.x","signal":"SIGINT"}
Stop with Ctrl-C (exit 0): the procedure is unregistered, calls in flight fail (their callers
get "handler_error: macula serve is stopping") and their commands are killed. With --count,
serve exits 0 once n calls are answered (130 if Ctrl-C came first).

${STOP_HELP}
${TARGET_HELP}

Examples:
  $ macula serve echo.test --echo --verbose
  $ macula serve text.upper -- tr a-z A-Z
  $ macula serve math.add -- jq -c '{sum: (.a + .b)}'
  $ macula serve files.get -- sh -c 'cat "$(cat)"'      a shell only when you ask for one
  $ macula serve jobs.run --json -v --concurrency 2 -- ./run-job.sh | jq -c 'select(.ms > 100)'

Exit codes: 0 stopped (Ctrl-C, SIGTERM, --count calls answered, stdout closed), 1 failed
(cannot connect, refused by the node), 2 usage error (bad procedure name, neither or both of
--echo and a command, command not found), 130 Ctrl-C (143 SIGTERM) before --count calls.`,
    )
    .action(action("macula serve", async (procedure, command, opts) => {
      if (opts.echo && command.length > 0) throw usage("--echo and a command: pick one");
      if (!opts.echo && command.length === 0) {
        throw usage(
          "say how to answer: --echo, or a command after '--'\n" +
            `  e.g. macula serve ${procedure} -- cat`,
        );
      }
      if (command.length > 0 && findExecutable(command[0]!) === null) {
        throw usage(`command not found or not executable: ${command[0]}`);
      }
      const t = target(opts);
      const client = await connectTo("macula serve", t, opts);
      const count = opts.count;
      const signal = untilSignal({
        prefix: "macula serve",
        exitCode: (sig) => count === undefined ? 0 : signalExitCode(sig),
      });
      let ended!: (why: ServeEnd) => void;
      const end = new Promise<ServeEnd>((resolve) => (ended = resolve));
      void signal.done.then((sig) => ended({ signal: sig }));
      /** A log line on stderr, or with --json its object on stdout. */
      const log = (line: string, event: Record<string, unknown>) => {
        if (!opts.json) return void err(`macula serve: ${line}`);
        out(`${JSON.stringify({ event: event.event, procedure, ...event })}\n`).catch((e) =>
          ended({ output: e as Error })
        );
      };
      // Aborted when serve stops: calls in flight (and those waiting for a slot) end.
      const shutdown = new AbortController();
      const running = new Set<Promise<unknown>>();
      const gate = new Gate(opts.concurrency);
      let arrived = 0;
      let answered = 0;
      try {
        const handle = async (payload: Uint8Array, ctx: CallContext): Promise<Uint8Array> => {
          const n = ++arrived;
          // The last call --count takes: no more are handed to this process.
          if (count !== undefined && n >= count) reg.stop();
          const t0 = performance.now();
          if (opts.verbose) {
            log(`${procedure}: call ${n}: ${payload.length} bytes`, {
              event: "call",
              call: n,
              bytes: payload.length,
            });
          }
          const failed = (message: string) =>
            log(`${procedure}: call ${n}: ${message} (${since(t0)} ms)`, {
              event: "failed",
              call: n,
              error: message,
              ms: since(t0),
            });
          const stop = AbortSignal.any([ctx.signal, shutdown.signal]);
          const task = opts.echo ? Promise.resolve(payload) : gate.run(
            stop,
            () =>
              runOnce(command, payload, {
                timeoutMs: opts.timeout,
                maxOutput: client.maxPayload,
                signal: stop,
              }),
          );
          try {
            const reply = await task;
            if (opts.verbose) {
              log(`${procedure}: call ${n}: replied ${reply.length} bytes in ${since(t0)} ms`, {
                event: "reply",
                call: n,
                bytes: reply.length,
                ms: since(t0),
              });
            }
            return reply;
          } catch (e) {
            failed((e as Error).message);
            // Over the limit: the client answers the caller payload_too_large for such a reply.
            if (e instanceof OutputTooLarge) return e.bytes;
            throw e;
          } finally {
            if (count !== undefined && ++answered >= count) ended({ count: true });
          }
        };
        // `running` holds the very promise the client awaits: once it settles, the reply (or the
        // failure) has been handed to the session, so stopping after it loses no answer.
        const reg = client.serve(procedure, (payload, ctx) => {
          const call = handle(payload, ctx);
          running.add(call);
          const forget = () => void running.delete(call);
          call.then(forget, forget);
          return call;
        });
        await reg.ready;
        if (opts.json) {
          log("", { event: "serving", url: t.url });
        } else err(`serving ${procedure} on ${t.url}`);
        const why = await end;
        if ("signal" in why) {
          log(`${why.signal}: stopping`, { event: "stopping", signal: why.signal });
        }
        reg.stop();
        shutdown.abort("macula serve is stopping");
        // Each command's group is ended (SIGKILL after the grace) and every call answered
        // before the session closes.
        await Promise.allSettled([...running]);
        await new Promise((r) => setImmediate(r)); // the client writes the last answers
        if ("output" in why) throw why.output;
      } finally {
        signal.cancel();
        await client.close();
      }
      if (signal.received && count !== undefined && answered < count) {
        throw stoppedBy(signal.received, ` after ${answered} of ${plural(count, "call")}`);
      }
    }));
}

/** The messaging commands, in the order `macula --help` lists them. */
export function messagingCommands(): Command[] {
  return [pubCommand(), subCommand(), callCommand(), serveCommand()].map((c) =>
    c.helpGroup("Messaging:") as unknown as Command
  );
}
