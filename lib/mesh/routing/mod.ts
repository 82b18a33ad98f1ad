/** Paths to far nodes over the overlay: the distance-vector table the router forwards by (docs/routing.md). */
export { MAX_HOPS, type Path, PathTable } from "./paths.ts";
