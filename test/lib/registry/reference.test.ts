import { describe, expect, test } from "@jest/globals";
import { formatReference, parseReference } from "../../../lib/registry/reference.js";

const D = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  test.each([
    ["ubuntu:22.04", "docker.io/library/ubuntu:22.04"],
    ["ubuntu", "docker.io/library/ubuntu:latest"],
    ["team/app:1", "docker.io/team/app:1"],
    ["index.docker.io/library/debian:12", "docker.io/library/debian:12"],
    ["registry.example/team/app:1.2.3", "registry.example/team/app:1.2.3"],
    ["localhost/app", "localhost/app:latest"],
    ["127.0.0.1:5000/a/b/c:tag", "127.0.0.1:5000/a/b/c:tag"],
    [`app@${D}`, `docker.io/library/app@${D}`],
    [`host.example:443/app:1@${D}`, `host.example:443/app:1@${D}`],
  ])("%s → %s", (ref, want) => {
    expect(formatReference(parseReference(ref))).toBe(want);
  });

  test.each(["", "UPPER/app", "app:bad tag", "../etc/passwd", "host.example/../x", "app@sha256:short", "http://host/app", "host.example/a//b"])("%j is refused", (ref) => {
    expect(() => parseReference(ref)).toThrow();
  });
});
