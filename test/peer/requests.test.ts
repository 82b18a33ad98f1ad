/**
 * The request registry (lib/peer/requests.ts): one declaration per method, payloads and answers
 * checked by lib/wire's field checker on both sides, errors naming the method and the field.
 */
import { describe, expect, test } from "bun:test";
import {
  ask,
  decodeBody,
  defineRequest,
  encodeBody,
  type PeerSession,
  PermissionError,
  RequestError,
  RequestRegistry,
} from "../../lib/peer/mod.ts";
import type { FieldSpec } from "../../lib/wire/mod.ts";

const port: FieldSpec = {
  name: "port",
  kind: "uint",
  max: 65535,
  valid: (v: number) => v >= 1,
  want: "a port 1-65535",
};
const name: FieldSpec = { name: "name", kind: "str", max: 8, want: "a short name" };
const loud: FieldSpec = {
  name: "loud",
  kind: "bool",
  max: 1,
  optional: true,
  want: "true or false",
};
const GREET = defineRequest<{ name: string; port: number; loud?: boolean }, { text: string }>(
  "greet",
  [name, port, loud],
  [{ name: "text", kind: "str", max: 64, want: "a text" }],
);
const RAW = defineRequest<Uint8Array, Uint8Array>("raw", "bytes", "bytes");
const DOC = defineRequest<Record<never, never>, unknown>("doc", [], "document");

const utf8 = (s: string) => new TextEncoder().encode(s);
type Ctx = Parameters<RequestRegistry["handle"]>[2];
const asPeer = (role: "node" | "client", groups: string[] = []) =>
  ({ session: {} as PeerSession, peer: { role, groups } }) as unknown as Ctx;
const ctx = asPeer("node");

describe("request bodies", () => {
  test("fields: checked and typed; absent optionals left out; an empty list is an empty payload", () => {
    const bytes = encodeBody(GREET.request, { name: "ann", port: 80 });
    expect(decodeBody(GREET.request, bytes, "greet")).toEqual({ name: "ann", port: 80 });
    expect(encodeBody([], {})).toEqual(new Uint8Array(0));
    expect(decodeBody([], new Uint8Array(0), "ping")).toEqual({});
    expect(encodeBody("bytes", utf8("x"))).toEqual(utf8("x"));
    expect(decodeBody("document", utf8('{"a":[1]}'), "doc")).toEqual({ a: [1] });
  });

  test("every bad payload is a RequestError naming the method, the field and what came", () => {
    const bad = (text: string) => {
      try {
        decodeBody(GREET.request, utf8(text), "greet");
      } catch (e) {
        expect(e).toBeInstanceOf(RequestError);
        return (e as Error).message;
      }
      throw new Error("decoded");
    };
    expect(bad("nope")).toBe("greet: the payload is not JSON");
    expect(bad("7")).toBe("greet: the payload is not an object");
    expect(bad('{"port":80}')).toBe("greet: name must be a short name (got nothing)");
    expect(bad('{"name":"annabelle!","port":80}')).toBe(
      'greet: name must be a short name (got "annabelle!")',
    );
    expect(bad('{"name":"a","port":0}')).toBe("greet: port must be a port 1-65535 (got 0)");
    expect(bad('{"name":"a","port":70000}')).toBe(
      "greet: port must be a port 1-65535 (got 70000)",
    );
    expect(bad('{"name":"a","port":1,"loud":"yes"}')).toBe(
      'greet: loud must be true or false (got "yes")',
    );
  });
});

describe("the registry", () => {
  test("serves a method with the checked payload; its answer is encoded by the spec", async () => {
    const r = new RequestRegistry();
    r.on(GREET, (q) => ({ text: `${q.loud ? "HELLO" : "hello"} ${q.name}:${q.port}` }));
    r.on(RAW, (b) => b.slice().reverse());
    r.on(DOC, () => ({ any: { thing: true } }));
    expect(r.methods()).toEqual(["doc", "greet", "raw"]);
    const answer = await r.handle("greet", utf8('{"name":"bo","port":9,"loud":true}'), ctx);
    expect(JSON.parse(new TextDecoder().decode(answer))).toEqual({ text: "HELLO bo:9" });
    expect(await r.handle("raw", new Uint8Array([1, 2]), ctx)).toEqual(new Uint8Array([2, 1]));
    expect(new TextDecoder().decode(await r.handle("doc", new Uint8Array(0), ctx))).toBe(
      '{"any":{"thing":true}}',
    );
  });

  test("an unknown method and a bad payload are refused by name; a method registers once", async () => {
    const r = new RequestRegistry();
    r.on(GREET, () => ({ text: "x" }));
    await expect(r.handle("nope", new Uint8Array(0), ctx)).rejects.toThrow(
      'unknown request "nope"',
    );
    await expect(r.handle("greet", utf8("{}"), ctx)).rejects.toThrow(
      "greet: name must be a short name",
    );
    expect(() => r.on(GREET, () => ({ text: "y" }))).toThrow("request greet is already registered");
  });

  test("ask checks the answer too: a hostile peer's bad answer names the field", async () => {
    const peer = (answer: string) =>
      ({ request: () => Promise.resolve(utf8(answer)) }) as unknown as PeerSession;
    expect(await ask(peer('{"text":"hi"}'), GREET, { name: "a", port: 1 })).toEqual({
      text: "hi",
    });
    await expect(ask(peer('{"text":5}'), GREET, { name: "a", port: 1 })).rejects.toThrow(
      "greet answer: text must be a text (got 5)",
    );
  });

  test("who may ask: nodes by default, operators and anyone when declared; refusals counted", async () => {
    const ops = defineRequest<Record<never, never>, unknown>("ops", [], "document", "operators");
    const open = defineRequest<Record<never, never>, unknown>("open", [], "document", "anyone");
    const r = new RequestRegistry();
    r.on(GREET, () => ({ text: "x" }));
    r.on(ops, () => ({ ok: true }));
    r.on(open, () => ({ ok: true }));
    const client = asPeer("client");
    const refused = async (method: string, payload = new Uint8Array(0)) => {
      try {
        await r.handle(method, payload, client);
      } catch (e) {
        expect(e).toBeInstanceOf(PermissionError);
        expect((e as PermissionError).wireCode).toBe("permission_denied");
        return (e as Error).message;
      }
      throw new Error("allowed");
    };
    // Refused before the payload is read: a bad payload costs nothing more.
    expect(await refused("greet", utf8("not json"))).toBe("greet is for peer nodes only");
    expect(await refused("ops")).toBe("ops is for operators only");
    expect(new TextDecoder().decode(await r.handle("open", new Uint8Array(0), client))).toBe(
      '{"ok":true}',
    );
    expect(new TextDecoder().decode(await r.handle("ops", new Uint8Array(0), ctx))).toBe(
      '{"ok":true}',
    );
    expect(Object.fromEntries(r.refused)).toEqual({ greet: 1, ops: 1 });
    // The node's own check decides who is an operator.
    const byGroup = new RequestRegistry((access, peer) =>
      access === "anyone" || peer.role === "node" || peer.groups.includes("operator") ? null : "no"
    );
    byGroup.on(ops, () => ({ ok: 1 }));
    await byGroup.handle("ops", new Uint8Array(0), asPeer("client", ["operator"]));
    await expect(byGroup.handle("ops", new Uint8Array(0), client)).rejects.toThrow("no");
  });
});
