/** The registry client's pure parts: challenges, docker config.json, platforms. (Requests: test/lib/symbols/image.test.ts, against docker-registry.) */
import { describe, expect, test } from "@jest/globals";
import { ociArchitecture, parseAuthFile, parseChallenge } from "../../../lib/registry/client.js";

describe("registry client", () => {
  test("parseChallenge", () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"')).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/ubuntu:pull" },
    });
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: "basic", params: { realm: "Registry Realm" } });
    expect(parseChallenge("")).toEqual({ scheme: "", params: {} });
  });

  test("parseAuthFile: auth or username/password; Docker Hub's v1 key is docker.io", () => {
    const text = JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: Buffer.from("hub:pw:with:colons").toString("base64") },
        "registry.example:5000": { username: "u", password: "p" },
        "empty.example": {},
      },
    });
    expect(parseAuthFile(text)).toEqual({ "docker.io": { username: "hub", password: "pw:with:colons" }, "registry.example:5000": { username: "u", password: "p" } });
    expect(() => parseAuthFile("{not json", "REGISTRY_AUTH_FILE /x")).toThrow(/REGISTRY_AUTH_FILE \/x: not a docker config.json/);
  });

  test("ociArchitecture", () => {
    expect(ociArchitecture("x86_64")).toBe("amd64");
    expect(ociArchitecture("aarch64")).toBe("arm64");
  });
});
