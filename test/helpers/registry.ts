/** The test registry (docker-registry on loopback) lives beside the other stand-ins: worker/devRegistry.ts. */
export * from "../../worker/devRegistry.js";
