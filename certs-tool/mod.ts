/** The realm certificate authority behind `macula certs`: the programmatic API. */
export * from "./ca.ts";
export * from "./duration.ts";
export { FileError } from "./files.ts";
export * from "./inspect.ts";
