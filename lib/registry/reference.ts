/**
 * Image references as an event names them (`data.image`): `ubuntu:22.04`,
 * `registry.example:5000/team/app:1.2.3`, `app@sha256:…`. Docker's rules:
 * the first component is a registry only when it has a `.` or `:` or is
 * `localhost`; otherwise the image is on Docker Hub, and a one-component
 * name lives under `library/` (`ubuntu:22.04` → `docker.io/library/ubuntu:22.04`).
 * Docker Hub's API host is `registry-1.docker.io`.
 *
 * A reference is attacker data: the parser accepts only the distribution
 * spec's grammar, so nothing else (path syntax, URLs, spaces) reaches a URL.
 */

/** A parsed image reference. */
export interface ImageReference {
  /** Registry host[:port] as named (docker.io for Docker Hub). */
  registry: string;
  /** Repository path, e.g. library/ubuntu. */
  repository: string;
  tag: string | null;
  /** sha256:… when the reference pins a digest. */
  digest: string | null;
}

/** Not an image reference the worker can pull. */
export class ImageReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageReferenceError";
  }
}

export const DOCKER_HUB = "docker.io";
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** Parses `ref`; throws ImageReferenceError naming what is wrong. */
export function parseReference(ref: string): ImageReference {
  if (ref.length === 0 || ref.length > 512) throw new ImageReferenceError(`image reference of ${ref.length} characters`);
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageReferenceError(`unsupported digest in ${JSON.stringify(ref)} (expected sha256:<64 hex>)`);
  }
  let tag: string | null = null;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageReferenceError(`bad tag in ${JSON.stringify(ref)}`);
  }
  const parts = rest.split("/");
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    if (!HOST.test(first)) throw new ImageReferenceError(`bad registry host in ${JSON.stringify(ref)}`);
    registry = first;
    parts.shift();
  }
  if (registry === "index.docker.io" || registry === "registry-1.docker.io") registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw new ImageReferenceError(`bad repository component ${JSON.stringify(p)} in ${JSON.stringify(ref)}`);
  }
  if (!tag && !digest) tag = "latest";
  return { registry, repository: parts.join("/"), tag, digest };
}

/** The canonical text: `docker.io/library/ubuntu:22.04`, `host/app@sha256:…`. */
export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** The host the API is served from (Docker Hub's differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
}
