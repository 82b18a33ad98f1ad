/**
 * The STUN codec (lib/nat/stun.ts): RFC 5769 test vectors, round trips, strictness, and a seeded
 * fuzz (random and mutated bytes only ever raise StunError). Then the server (lib/nat/
 * stun-server.ts) on a real QUIC endpoint's socket: answers, CHANGE-REQUEST, bad packets.
 */
import { describe, expect, test } from "bun:test";
import {
  ATTR,
  BINDING,
  crc32,
  decodeStun,
  encodeStun,
  formatIp,
  isStun,
  newTransactionId,
  parseIp,
  StunError,
  type StunMessage,
  verifyIntegrity,
} from "../../lib/nat/stun.ts";
import { openRawSocket, type OwnedRawSocket, StunServer } from "../../lib/nat/stun-server.ts";
import { StunClient } from "../../lib/nat/netcheck.ts";
import { closingEndpoints } from "../helpers/quic.ts";

const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/), (b) => parseInt(b, 16));

// RFC 5769 §2.1–2.3.
const PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt";
const TID = hex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae");
const SAMPLE_REQUEST = hex(`
  00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`);
const SAMPLE_IPV4_RESPONSE = hex(`
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`);
const SAMPLE_IPV6_RESPONSE = hex(`
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`);

/** Throws unless `f` throws a StunError whose message matches. */
function rejects(f: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(StunError);
  expect((err as Error).message).toMatch(pattern);
}

describe("RFC 5769 test vectors", () => {
  test("2.1 sample request: attributes, integrity and fingerprint verify", () => {
    const m = decodeStun(SAMPLE_REQUEST);
    expect(m.cls).toBe("request");
    expect(m.method).toBe(BINDING);
    expect(m.transactionId).toEqual(TID);
    expect(m.software).toBe("STUN test client");
    expect(m.username).toBe("evtj:h6vY");
    expect(m.hasIntegrity).toBe(true);
    expect(m.hasFingerprint).toBe(true);
    expect(m.unknownRequired).toEqual([]); // PRIORITY is an ICE attribute this codec knows
    expect(m.attributes!.map((a) => a.type)).toEqual([
      ATTR.SOFTWARE,
      ATTR.PRIORITY,
      ATTR.ICE_CONTROLLED,
      ATTR.USERNAME,
      ATTR.MESSAGE_INTEGRITY,
      ATTR.FINGERPRINT,
    ]);
    expect(verifyIntegrity(SAMPLE_REQUEST, PASSWORD)).toBe(true);
    expect(verifyIntegrity(SAMPLE_REQUEST, "wrong")).toBe(false);
  });

  test("2.2 IPv4 response: XOR-MAPPED-ADDRESS is 192.0.2.1:32853", () => {
    const m = decodeStun(SAMPLE_IPV4_RESPONSE);
    expect(m.cls).toBe("success");
    expect(m.software).toBe("test vector");
    expect(m.xorMappedAddress).toEqual({ family: "IPv4", host: "192.0.2.1", port: 32853 });
    expect(m.hasFingerprint).toBe(true);
    expect(verifyIntegrity(SAMPLE_IPV4_RESPONSE, PASSWORD)).toBe(true);
  });

  test("2.3 IPv6 response: XOR-MAPPED-ADDRESS is [2001:db8:1234:5678:11:2233:4455:6677]:32853", () => {
    const m = decodeStun(SAMPLE_IPV6_RESPONSE);
    expect(m.xorMappedAddress).toEqual({
      family: "IPv6",
      host: "2001:db8:1234:5678:11:2233:4455:6677",
      port: 32853,
    });
    expect(verifyIntegrity(SAMPLE_IPV6_RESPONSE, PASSWORD)).toBe(true);
  });

  test("re-encoding the 2.2 response: same header and attributes, integrity verifies", () => {
    const m = decodeStun(SAMPLE_IPV4_RESPONSE);
    const again = encodeStun(
      {
        cls: "success",
        method: BINDING,
        transactionId: TID,
        software: m.software!,
        xorMappedAddress: m.xorMappedAddress!,
      },
      { integrityKey: PASSWORD, fingerprint: true },
    );
    // Attribute order and padding bytes differ from the vector (it pads with a space), so the
    // HMAC and CRC differ; the header and each attribute's value are the same.
    expect(again.length).toBe(SAMPLE_IPV4_RESPONSE.length);
    expect(again.subarray(0, 20)).toEqual(SAMPLE_IPV4_RESPONSE.subarray(0, 20));
    const values = (b: Uint8Array) =>
      decodeStun(b).attributes!.filter((a) =>
        a.type !== ATTR.MESSAGE_INTEGRITY &&
        a.type !== ATTR.FINGERPRINT
      ).sort((x, y) => x.type - y.type);
    expect(values(again)).toEqual(values(SAMPLE_IPV4_RESPONSE));
    expect(verifyIntegrity(again, PASSWORD)).toBe(true);
    expect(decodeStun(again).xorMappedAddress).toEqual(m.xorMappedAddress!);
  });

  test("a Node Buffer decodes and verifies, and is left untouched", () => {
    const buf = Buffer.from(SAMPLE_IPV6_RESPONSE);
    expect(decodeStun(buf).xorMappedAddress!.host).toBe("2001:db8:1234:5678:11:2233:4455:6677");
    expect(verifyIntegrity(buf, PASSWORD)).toBe(true);
    expect(decodeStun(buf).hasFingerprint).toBe(true);
    expect(new Uint8Array(buf)).toEqual(SAMPLE_IPV6_RESPONSE);
  });

  test("a flipped bit breaks the fingerprint, or the integrity when the CRC is redone", () => {
    const bad = SAMPLE_IPV4_RESPONSE.slice();
    bad[45] = bad[45]! ^ 1;
    rejects(() => decodeStun(bad), /FINGERPRINT is 0x[0-9a-f]{8}, the message's is/);
    const noFp = encodeStun({
      cls: "success",
      method: BINDING,
      transactionId: TID,
      xorMappedAddress: { family: "IPv4", host: "192.0.2.1", port: 1 },
    }, { integrityKey: PASSWORD });
    noFp[27] = noFp[27]! ^ 1;
    expect(verifyIntegrity(noFp, PASSWORD)).toBe(false);
  });
});

describe("codec", () => {
  test("CRC-32 check value", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  test("IP text round trips (RFC 5952 form)", () => {
    for (const ip of ["0.0.0.0", "255.1.2.3", "::", "::1", "2001:db8::1", "fe80::1:0:0:2", "1::"]) {
      expect(formatIp(parseIp(ip)!)).toBe(ip);
    }
    expect(formatIp(parseIp("2001:0db8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(formatIp(parseIp("::ffff:1.2.3.4")!)).toBe("::ffff:102:304");
    for (const bad of ["1.2.3", "256.1.1.1", "1::2::3", "12345::", "a", "1:2:3:4:5:6:7:8:9"]) {
      expect(parseIp(bad)).toBeNull();
    }
  });

  test("every attribute round trips, with integrity and fingerprint", () => {
    const msg: StunMessage = {
      cls: "error",
      method: BINDING,
      transactionId: newTransactionId(),
      mappedAddress: { family: "IPv4", host: "10.1.2.3", port: 4433 },
      xorMappedAddress: { family: "IPv6", host: "2001:db8::42", port: 65535 },
      username: "alice:bob",
      software: "macula test",
      errorCode: { code: 420, reason: "Unknown Attribute" },
      unknownAttributes: [0x0042, 0x0043],
      changeRequest: { changeIp: true, changePort: false },
      responseOrigin: { family: "IPv4", host: "198.51.100.1", port: 3478 },
      otherAddress: { family: "IPv4", host: "198.51.100.2", port: 3479 },
    };
    const bytes = encodeStun(msg, { integrityKey: "pw", fingerprint: true });
    expect(isStun(bytes)).toBe(true);
    expect(bytes.length % 4).toBe(0);
    const back = decodeStun(bytes);
    for (const k of Object.keys(msg) as (keyof StunMessage)[]) expect(back[k]).toEqual(msg[k]);
    expect(back.hasIntegrity).toBe(true);
    expect(back.hasFingerprint).toBe(true);
    expect(verifyIntegrity(bytes, "pw")).toBe(true);
    expect(verifyIntegrity(encodeStun(msg), "pw")).toBe(false); // none
  });

  test("every class and 12-bit methods round trip", () => {
    for (const cls of ["request", "indication", "success", "error"] as const) {
      for (const method of [0x001, 0x00f, 0x070, 0xf80, 0xfff]) {
        const m = decodeStun(encodeStun({ cls, method, transactionId: newTransactionId() }));
        expect([m.cls, m.method]).toEqual([cls, method]);
      }
    }
    expect(encodeStun({ cls: "request", method: 1, transactionId: TID })[0]).toBe(0);
    expect(encodeStun({ cls: "success", method: 1, transactionId: TID }).subarray(0, 2))
      .toEqual(Uint8Array.of(0x01, 0x01));
  });

  test("strict decoding names what is wrong", () => {
    const ok = encodeStun({
      cls: "request",
      method: BINDING,
      transactionId: TID,
      software: "abc",
    });
    rejects(() => decodeStun(ok.subarray(0, 19)), /shorter than the 20-byte header/);
    const cookie = ok.slice();
    cookie[4] = 0;
    rejects(() => decodeStun(cookie), /magic cookie is 0x0012a442/);
    const top = ok.slice();
    top[0] = 0x40;
    rejects(() => decodeStun(top), /first two bits are not zero/);
    const len = ok.slice();
    len[3] = 6;
    rejects(() => decodeStun(len), /not a multiple of 4/);
    rejects(() => decodeStun(ok.subarray(0, ok.length - 4)), /does not match the 4 bytes/);
    const attrLen = ok.slice();
    attrLen[23] = 9;
    rejects(() => decodeStun(attrLen), /SOFTWARE at offset 20: length 9 \(padded 12\) runs past/);
    const family = encodeStun({
      cls: "success",
      method: BINDING,
      transactionId: TID,
      xorMappedAddress: { family: "IPv4", host: "1.2.3.4", port: 5 },
    });
    family[25] = 3;
    rejects(() => decodeStun(family), /XOR-MAPPED-ADDRESS: unknown address family 0x03/);
    const after = new Uint8Array([...SAMPLE_IPV4_RESPONSE, 0x80, 0x22, 0, 0]);
    after[3] = after[3]! + 4;
    rejects(() => decodeStun(after), /after FINGERPRINT/);
    const change = encodeStun({
      cls: "request",
      method: BINDING,
      transactionId: TID,
      changeRequest: { changeIp: false, changePort: true },
    });
    change[23] = 2; // CHANGE-REQUEST of length 2 (padded to 4)
    rejects(() => decodeStun(change), /CHANGE-REQUEST: length 2, must be 4/);
  });

  test("unknown comprehension-required attributes are reported, optional ones kept", () => {
    const base = encodeStun({ cls: "request", method: BINDING, transactionId: TID });
    const withAttrs = new Uint8Array([
      ...base,
      ...[0x00, 0x42, 0x00, 0x01, 0xaa, 0, 0, 0], // required, unknown
      ...[0x80, 0x99, 0x00, 0x02, 0xbb, 0xcc, 0, 0], // optional, unknown
    ]);
    withAttrs[3] = 16;
    const m = decodeStun(withAttrs);
    expect(m.unknownRequired).toEqual([0x0042]);
    expect(m.attributes).toEqual([
      { type: 0x0042, value: Uint8Array.of(0xaa) },
      { type: 0x8099, value: Uint8Array.of(0xbb, 0xcc) },
    ]);
  });

  test("isStun is RFC 7983's first-byte test plus the cookie", () => {
    expect(isStun(SAMPLE_REQUEST)).toBe(true);
    expect(isStun(Uint8Array.of(0xc0, ...SAMPLE_REQUEST.subarray(1)))).toBe(false);
    expect(isStun(new Uint8Array(20))).toBe(false);
    expect(isStun(SAMPLE_REQUEST.subarray(0, 12))).toBe(false);
  });

  test("encoding refuses what cannot go on the wire", () => {
    const base = { cls: "request" as const, method: BINDING, transactionId: TID };
    expect(() => encodeStun({ ...base, transactionId: new Uint8Array(11) })).toThrow(StunError);
    expect(() =>
      encodeStun({ ...base, mappedAddress: { family: "IPv4", host: "host.example", port: 1 } })
    ).toThrow(/not an IP address/);
    expect(() => encodeStun({ ...base, errorCode: { code: 200, reason: "" } })).toThrow(
      /not from 300 to 699/,
    );
    expect(() => encodeStun({ ...base, method: 0x1000 })).toThrow(/12-bit/);
  });
});

describe("fuzz (seeded)", () => {
  /** mulberry32: the same sequence for the same seed. */
  function rng(seed: number) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function survive(bytes: Uint8Array, seed: number, i: number): void {
    for (const f of [() => decodeStun(bytes), () => verifyIntegrity(bytes, PASSWORD)]) {
      try {
        f();
      } catch (e) {
        if (!(e instanceof StunError)) {
          throw new Error(
            `seed ${seed} case ${i}: ${String(e)} for ${Buffer.from(bytes).toString("hex")}`,
          );
        }
      }
    }
    isStun(bytes);
  }

  const SEED = 20261127;
  test(`random bytes only raise StunError (seed ${SEED})`, () => {
    const r = rng(SEED);
    for (let i = 0; i < 5000; i++) {
      const b = new Uint8Array(Math.floor(r() * 120));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256);
      if (b.length >= 8 && r() < 0.7) { // mostly past the header check
        b[0] = b[0]! & 0x03;
        b.set([0x21, 0x12, 0xa4, 0x42], 4);
        b[2] = ((b.length - 20) >> 8) & 0xff;
        b[3] = (b.length - 20) & 0xff;
      }
      survive(b, SEED, i);
    }
  });

  test(`mutated valid messages only raise StunError (seed ${SEED})`, () => {
    const r = rng(SEED + 1);
    const seeds = [
      SAMPLE_REQUEST,
      SAMPLE_IPV4_RESPONSE,
      SAMPLE_IPV6_RESPONSE,
      encodeStun({
        cls: "error",
        method: BINDING,
        transactionId: TID,
        errorCode: { code: 420, reason: "x" },
        unknownAttributes: [1, 2, 3],
        changeRequest: { changeIp: true, changePort: true },
        otherAddress: { family: "IPv6", host: "::1", port: 9 },
      }, { fingerprint: true }),
    ];
    let decoded = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = seeds[i % seeds.length]!.slice();
      const flips = 1 + Math.floor(r() * 3);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(r() * b.length);
        b[at] = r() < 0.5 ? b[at]! ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
      }
      const cut = r() < 0.1 ? b.subarray(0, Math.floor(r() * b.length)) : b;
      survive(cut, SEED + 1, i);
      try {
        decodeStun(cut);
        decoded++;
      } catch { /* counted above */ }
    }
    // The fingerprint rejects nearly every mutation; this test is about never crashing.
    expect(decoded).toBeLessThan(1000);
  });
});

describe("STUN server on a QUIC endpoint's socket", () => {
  const { ep } = closingEndpoints();
  const owned: OwnedRawSocket[] = [];
  const raw = async (host = "127.0.0.1") => {
    const s = await openRawSocket(host, 0);
    owned.push(s);
    return s;
  };
  const done = () => owned.splice(0).forEach((s) => s.close());
  const RT = { rtoMs: 50, transmissions: 3, lastWaitRtos: 2 };

  test("answers a Binding request with the client's address; QUIC still works", async () => {
    const server = await ep();
    const stun = new StunServer({ primary: server, software: "macula-test" });
    const clientSock = await raw();
    const client = new StunClient(clientSock);
    try {
      const r = await client.binding(server.address, { rt: RT });
      expect(r).not.toBeNull();
      expect(r!.msg.cls).toBe("success");
      expect(r!.msg.xorMappedAddress).toEqual({
        family: "IPv4",
        host: "127.0.0.1",
        port: clientSock.address.port,
      });
      expect(r!.msg.mappedAddress).toEqual(r!.msg.xorMappedAddress!);
      expect(r!.msg.responseOrigin).toMatchObject(server.address);
      expect(r!.msg.otherAddress).toBeUndefined();
      expect(r!.msg.software).toBe("macula-test");
      expect(r!.msg.hasFingerprint).toBe(true);
      expect(stun.stats.requests).toBe(1);
      // A change request this server cannot honour gets a 400 saying so.
      const c = await client.binding(server.address, { changePort: true, rt: RT });
      expect(c!.msg.cls).toBe("error");
      expect(c!.msg.errorCode).toEqual({
        code: 400,
        reason: "cannot answer from another port: this server has no such address",
      });
      // The QUIC side of the same port still accepts connections.
      const dialer = await ep();
      const accepted = server.accept();
      const conn = await dialer.connect(server.address);
      expect(await accepted).not.toBeNull();
      await conn.close();
    } finally {
      client.close();
      stun.close();
      done();
    }
  });

  test("CHANGE-REQUEST is answered from the alternate port, with OTHER-ADDRESS", async () => {
    const primary = await ep();
    const alt = await ep();
    const stun = new StunServer({ primary, altPort: alt });
    const client = new StunClient(await raw());
    try {
      const r = await client.binding(primary.address, { changePort: true, rt: RT });
      expect(r!.msg.cls).toBe("success");
      expect(r!.from).toEqual(alt.address);
      expect(r!.msg.responseOrigin).toMatchObject(alt.address);
      expect(r!.msg.otherAddress).toMatchObject(alt.address);
      const i = await client.binding(alt.address, { rt: RT });
      expect(i!.msg.otherAddress).toMatchObject(primary.address);
      expect(stun.stats.sentFrom).toEqual({ primary: 0, altPort: 2, altIp: 0, altIpPort: 0 });
    } finally {
      client.close();
      stun.close();
      done();
    }
  });

  test("bad packets are ignored and counted; unknown required attributes get 420", async () => {
    const server = await ep();
    const stun = new StunServer({ primary: server });
    const sock = await raw();
    const got: Uint8Array[] = [];
    sock.setNonQuicHandler((d) => got.push(d.slice()));
    try {
      const req = encodeStun({ cls: "request", method: BINDING, transactionId: TID });
      const badCookie = req.slice();
      badCookie[5] = 0;
      const badLen = req.slice();
      badLen[3] = 4;
      const indication = encodeStun({ cls: "indication", method: BINDING, transactionId: TID });
      for (const b of [Uint8Array.of(0, 1, 2), badCookie, badLen, indication, new Uint8Array(40)]) {
        sock.sendRaw(b, "127.0.0.1", server.address.port);
      }
      const unknown = new Uint8Array([...req, 0x00, 0x42, 0x00, 0x00]);
      unknown[3] = 4;
      sock.sendRaw(unknown, "127.0.0.1", server.address.port);
      const deadline = Date.now() + 5000;
      while (got.length === 0 && Date.now() < deadline) await Bun.sleep(10);
      await Bun.sleep(50);
      expect(got.length).toBe(1);
      const m = decodeStun(got[0]!);
      expect(m.errorCode).toEqual({ code: 420, reason: "Unknown Attribute" });
      expect(m.unknownAttributes).toEqual([0x0042]);
      expect(stun.stats).toMatchObject({ requests: 0, errors: 1, ignored: 5, malformed: 1 });
    } finally {
      stun.close();
      done();
    }
  });

  test("with a password, requests need MESSAGE-INTEGRITY and answers carry it", async () => {
    const server = await ep();
    const stun = new StunServer({ primary: server, password: "s3cret" });
    const sock = await raw();
    const got: Uint8Array[] = [];
    sock.setNonQuicHandler((d) => got.push(d.slice()));
    try {
      const send = (key?: string) =>
        sock.sendRaw(
          encodeStun(
            { cls: "request", method: BINDING, transactionId: newTransactionId(), username: "u" },
            key ? { integrityKey: key, fingerprint: true } : {},
          ),
          "127.0.0.1",
          server.address.port,
        );
      send();
      send("wrong");
      send("s3cret");
      const deadline = Date.now() + 5000;
      while (got.length < 3 && Date.now() < deadline) await Bun.sleep(10);
      const codes = got.map((b) => decodeStun(b).errorCode?.code ?? 0).sort();
      expect(codes).toEqual([0, 400, 401]);
      const ok = got.find((b) => decodeStun(b).cls === "success")!;
      expect(verifyIntegrity(ok, "s3cret")).toBe(true);
    } finally {
      stun.close();
      done();
    }
  });
});
