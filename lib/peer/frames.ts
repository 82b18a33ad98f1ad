/**
 * The session frames (docs/wire-protocol.md, "Session"). Types below 0x40 must be understood.
 */
import { Codec, type FrameSpec } from "../wire/mod.ts";

/** Versions this build speaks, best first. */
export const VERSIONS = ["macula/1"] as const;

const NAME = 256;

export const SESSION_FRAMES: readonly FrameSpec[] = [
  {
    type: 1,
    name: "HELLO",
    fields: [
      { name: "versions", kind: "strs", max: 8, itemMax: 32 },
      { name: "node", kind: "str", max: 52 },
      { name: "realm", kind: "str", max: 128 },
    ],
  },
  {
    type: 2,
    name: "HELLO_ACK",
    fields: [
      { name: "version", kind: "str", max: 32 },
      { name: "node", kind: "str", max: 52 },
      { name: "realm", kind: "str", max: 128 },
    ],
  },
  {
    type: 3,
    name: "GOAWAY",
    fields: [{ name: "reason", kind: "str", max: NAME }],
  },
  {
    type: 4,
    name: "OPEN",
    fields: [{ name: "channel", kind: "str", max: 32 }],
  },
  {
    type: 16,
    name: "REQ",
    fields: [
      { name: "method", kind: "str", max: NAME },
      { name: "payload", kind: "bytes", max: 16 * 1024 * 1024 },
      { name: "timeout_ms", kind: "uint", max: 86_400_000 },
    ],
  },
  {
    type: 17,
    name: "RES",
    fields: [{ name: "payload", kind: "bytes", max: 16 * 1024 * 1024 }],
  },
  {
    type: 18,
    name: "ERR",
    fields: [
      { name: "code", kind: "str", max: 64 },
      { name: "message", kind: "str", max: 4096 },
    ],
  },
];

/** The session codec; frames up to 16 MiB + headers. */
export const sessionCodec = new Codec(SESSION_FRAMES, 17 * 1024 * 1024);
