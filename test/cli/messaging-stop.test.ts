/**
 * How `pub`, `sub`, `call` and `serve` end (docs/cli.md, "Stopping"): a closed stdout ends them
 * quietly with exit 0; the first SIGINT stops them cleanly within a second, a second one at once
 * (130); `serve` kills each handler's whole process group (on exit, timeout, cancel and its own
 * stop), so nothing a handler started survives it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connect } from "../../lib/client/client.ts";
import { alive, eventually, groupAlive, Harness, pidFrom } from "./messaging-harness.ts";

let h: Harness;

beforeAll(async () => {
  h = await Harness.start("macula-msg-stop-");
});
afterAll(async () => {
  await h?.stop();
});

/** A handler that starts `sleep 30` in the background, writes its pid to `file`, then waits. */
const sleeper = (
  file: string,
  trap = "",
) => ["--", "sh", "-c", `${trap}sleep 30 & echo $! > ${file}; wait`];

describe("a closed stdout ends the command quietly, exit 0", () => {
  test("macula sub 'pp.*' | head -1: the first message, then sub exits 0 without a trace", async () => {
    // After head exits, the brace group closes its copy of the pipe too: the read end is gone,
    // so sub's next write fails (EPIPE) for sure.
    const p = h.shell(
      `$M sub 'pp.*' | { head -n 1; exec 0<&-; echo "head done" >&2; }; ` +
        `echo "sub exited \${PIPESTATUS[0]}" >&2`,
    );
    await p.waitFor("err", "subscribed to pp.*");
    await h.publish("pp.a", "one");
    await p.waitFor("err", "head done");
    expect(p.out).toBe("[pp.a] one\n");
    await h.publish("pp.a", "two"); // written into a pipe nobody reads
    expect(await p.code()).toBe(0);
    expect(p.err).toContain("sub exited 0\n");
    expect(p.err).not.toContain("EPIPE");
    expect(p.err.split("\n").filter((l) => l.startsWith("macula"))).toEqual([]);
  });

  test("call into a pipe whose reader is gone: exit 0, nothing on stderr", async () => {
    await h.serving(["st.echo", "--echo"]);
    // The call starts only once the reader has closed the pipe (a FIFO orders the two).
    const fifo = join(h.root, "order.fifo");
    const p = h.shell(
      `mkfifo ${fifo}; { read -r _ < ${fifo}; $M call st.echo '"x"'; echo "call exited $?" >&2; }` +
        ` | { exec 0<&-; echo go > ${fifo}; }`,
    );
    expect(await p.code()).toBe(0);
    expect(p.err).toBe("call exited 0\n");
  });

  test("serve --json | head -1: serve exits 0 at its next line", async () => {
    const p = h.shell(
      `$M serve st.head --echo --json -v | { head -n 1; exec 0<&-; echo "head done" >&2; }; ` +
        `echo "serve exited \${PIPESTATUS[0]}" >&2`,
    );
    await p.waitFor("err", "head done");
    expect(JSON.parse(p.out)).toEqual({ event: "serving", procedure: "st.head", url: h.node.url });
    // serve's log line about this call meets the closed pipe. (Whether the call is answered
    // first depends on how soon the process exits on EPIPE: not asserted here.)
    const call = h.macula(["call", "st.head", "1", "--timeout", "3000"]);
    expect(await p.code()).toBe(0);
    await call.code();
    expect(p.err).toContain("serve exited 0\n");
    expect(p.err).not.toContain("EPIPE");
  });
});

describe("Ctrl-C", () => {
  test("sub: SIGINT ends it within a second, exit 0", async () => {
    const sub = await h.subscribed(["st.stop"]);
    const t0 = performance.now();
    sub.p.kill("SIGINT");
    expect(await sub.code()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(sub.err).toBe(`subscribed to st.stop on ${h.node.url}\n`);
  });

  test("sub --count: SIGINT before the count is 130, saying how far it got", async () => {
    const sub = await h.subscribed(["st.few", "--count", "3"]);
    await h.publish("st.few", "a");
    await sub.waitFor("out", "[st.few] a\n");
    sub.p.kill("SIGINT");
    expect(await sub.code()).toBe(130);
    expect(sub.err).toEndWith("macula sub: stopped by SIGINT after 1 of 3 messages\n");
  });

  test("sub --count: SIGTERM before the count is 143", async () => {
    const sub = await h.subscribed(["st.term", "--count", "2"]);
    sub.p.kill("SIGTERM");
    expect(await sub.code()).toBe(143);
    expect(sub.err).toEndWith("macula sub: stopped by SIGTERM after 0 of 2 messages\n");
  });

  test("sub --count: SIGHUP (the terminal went away) before the count is 129", async () => {
    const sub = await h.subscribed(["st.hup", "--count", "2"]);
    sub.p.kill("SIGHUP");
    expect(await sub.code()).toBe(129);
    expect(sub.err).toEndWith("macula sub: stopped by SIGHUP after 0 of 2 messages\n");
  });

  test("sub: SIGHUP and SIGQUIT stop it cleanly, exit 0 (running until stopped is its job)", async () => {
    for (const sig of ["SIGHUP", "SIGQUIT"] as const) {
      const sub = await h.subscribed([`st.${sig}`]);
      sub.p.kill(sig);
      expect({ sig, code: await sub.code() }).toEqual({ sig, code: 0 });
      expect(sub.err).toBe(`subscribed to st.${sig} on ${h.node.url}\n`);
    }
  });

  test("serve: SIGHUP with a call in flight kills the handler's whole group, none left under PID 1", async () => {
    const file = join(h.root, "hup.pid");
    // The handler's shell is its group's leader: $$ is the group id.
    const serve = await h.serving(["hup.op", "--", "sh", "-c", `echo $$ > ${file}; sleep 1261`]);
    const call = h.macula(["call", "hup.op", "{}", "--timeout", "60000"]);
    const pgid = await pidFrom(file);
    expect(groupAlive(pgid)).toBe(true);
    serve.p.kill("SIGHUP");
    expect(await serve.code()).toBe(0);
    expect(serve.err).toContain("macula serve: SIGHUP: stopping\n");
    await eventually(`handler group ${pgid} gone`, () => !groupAlive(pgid));
    expect(await call.code()).toBe(5);
    expect(call.err).toBe("macula call: handler_error: macula serve is stopping\n");
  });

  test("serve --count: SIGHUP before the count is 129, and the group is gone", async () => {
    const file = join(h.root, "hup-count.pid");
    const serve = await h.serving([
      "hup.count",
      "--count",
      "2",
      "--",
      "sh",
      "-c",
      `echo $$ > ${file}; sleep 1261`,
    ]);
    h.macula(["call", "hup.count", "{}", "--timeout", "60000"]);
    const pgid = await pidFrom(file);
    serve.p.kill("SIGHUP");
    expect(await serve.code()).toBe(129);
    expect(serve.err).toEndWith("macula serve: stopped by SIGHUP after 1 of 2 calls\n");
    await eventually(`handler group ${pgid} gone`, () => !groupAlive(pgid));
  });

  test("serve: SIGINT kills a handler that ignores SIGTERM, and exits 0 within a second", async () => {
    const file = join(h.root, "ignore-term.pid");
    const serve = await h.serving(["st.stubborn", "-v", ...sleeper(file, "trap '' TERM; ")]);
    const call = h.macula(["call", "st.stubborn", "{}", "--timeout", "60000"]);
    const pid = await pidFrom(file);
    expect(alive(pid)).toBe(true);
    const t0 = performance.now();
    serve.p.kill("SIGINT");
    expect(await serve.code()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(serve.err).toContain("macula serve: SIGINT: stopping\n");
    expect(serve.err).toContain("st.stubborn: call 1: macula serve is stopping");
    expect(alive(pid)).toBe(false); // SIGKILLed with its group before serve exited
    expect(await call.code()).toBe(5);
    expect(call.err).toBe("macula call: handler_error: macula serve is stopping\n");
  });

  test("serve: a second SIGINT ends it at once, 130, and still kills the handler's group", async () => {
    const file = join(h.root, "twice.pid");
    const serve = await h.serving(["st.twice", "-v", ...sleeper(file, "trap '' TERM; ")]);
    h.macula(["call", "st.twice", "{}", "--timeout", "60000"]);
    const pid = await pidFrom(file);
    serve.p.kill("SIGINT");
    // The clean stop now waits out the handler's 0.5 s SIGTERM grace: interrupt it.
    await serve.waitFor("err", "SIGINT: stopping");
    serve.p.kill("SIGINT");
    expect(await serve.code()).toBe(130);
    expect(serve.err).not.toContain("macula serve is stopping"); // it did not wait for that
    await eventually(`handler child ${pid} gone`, () => !alive(pid));
  });

  test("pub: a stop that hangs (the node froze) is cut at one second, 130", async () => {
    // A node in a process of its own, so that it can be frozen (SIGSTOP).
    const { proc: nodeProc, ...ready } = await h.nodeProcess("frozen");
    try {
      const watcher = await connect({ url: ready.url, creds: ready.credsDir });
      const seen = watcher.subscribe("st.frozen");
      await watcher.flush();
      const pub = h.macula(
        [
          "pub",
          "--server",
          ready.url,
          "--creds",
          ready.credsDir,
          "st.frozen",
          "x",
          "-n",
          "100",
          "-r",
          "2",
        ],
        { target: false },
      );
      for await (const _ of seen) break; // pub's first message went through the node
      nodeProc.p.kill("SIGSTOP");
      const t0 = performance.now();
      pub.p.kill("SIGINT");
      // Without the bound, pub would wait 10 s for the node to answer its last flush.
      expect(await pub.code()).toBe(130);
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(pub.err).toBe("macula pub: did not stop within 1000 ms of SIGINT; exiting\n");
      nodeProc.p.kill("SIGCONT");
      await watcher.close();
    } finally {
      nodeProc.p.kill("SIGCONT");
      nodeProc.p.kill("SIGTERM");
      await nodeProc.code();
    }
  });

  test("call: SIGINT cancels the call (the provider hears of it) and exits 130", async () => {
    const serve = await h.serving(["st.hang", "-v", "--", "sleep", "30"]);
    const call = h.macula(["call", "st.hang", "{}", "--timeout", "60000"]);
    await serve.waitFor("err", "st.hang: call 1: 2 bytes");
    call.p.kill("SIGINT");
    expect(await call.code()).toBe(130);
    expect(call.err).toBe("macula call: stopped by SIGINT: the call was cancelled\n");
    await serve.waitFor("err", "st.hang: call 1: cancelled by the caller");
  });

  test("pub: SIGINT stops early, delivers what was published, exits 130 saying how many", async () => {
    const sub = await h.subscribed(["st.ticks", "--count", "1"]);
    const pub = h.macula(["pub", "st.ticks", "tick", "--count", "1000", "--rate", "2"]);
    await sub.waitFor("out", "[st.ticks] tick"); // the first one goes at once
    expect(await sub.code()).toBe(0);
    pub.p.kill("SIGINT");
    expect(await pub.code()).toBe(130);
    expect(pub.err).toMatch(
      /^macula pub: stopped by SIGINT after publishing \d+ messages? to st\.ticks\n$/,
    );
  });
});

describe("serve kills each handler's whole process group", () => {
  test("after --timeout: the command's own child is gone too", async () => {
    const file = join(h.root, "timeout.pid");
    await h.serving(["st.timeout", "--timeout", "300", ...sleeper(file)]);
    const r = await h.done(["call", "st.timeout", "{}", "--timeout", "20000"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe("macula call: handler_error: sh took longer than 300 ms\n");
    const pid = await pidFrom(file);
    await eventually(`sleep ${pid} gone`, () => !alive(pid));
  });

  test("when the caller gives up (its deadline): the command's child is gone too", async () => {
    const file = join(h.root, "cancel.pid");
    const serve = await h.serving(["st.cancel", ...sleeper(file)]);
    const r = await h.done(["call", "st.cancel", "{}", "--timeout", "500"]);
    expect(r.code).toBe(4);
    await serve.waitFor("err", "st.cancel: call 1: cancelled by the caller");
    const pid = await pidFrom(file);
    await eventually(`sleep ${pid} gone`, () => !alive(pid));
  });

  test("when the command exits: what it left running goes, and the reply does not wait for it", async () => {
    const file = join(h.root, "left.pid");
    // The background sleep holds the reply pipe open: without the group kill the call would
    // wait for it (30 s) and time out.
    await h.serving(["st.left", "--", "sh", "-c", `sleep 30 & echo $! > ${file}; echo hi`]);
    const t0 = performance.now();
    const r = await h.done(["call", "st.left", "{}", "--raw", "--timeout", "20000"]);
    expect(r).toEqual({ code: 0, stdout: "hi\n\n", stderr: "" });
    expect(performance.now() - t0).toBeLessThan(10_000);
    const pid = await pidFrom(file);
    await eventually(`sleep ${pid} gone`, () => !alive(pid));
  });
});
