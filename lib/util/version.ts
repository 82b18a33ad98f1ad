import pkg from "../../package.json" with { type: "json" };

/** Macula's version, from package.json (embedded at bundle time in the binary). */
export const VERSION: string = pkg.version;
