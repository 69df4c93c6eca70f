/** The test registry (docker-registry on loopback) lives beside the other stand-ins: dev/registry.ts. */
export * from "../../dev/registry.js";
