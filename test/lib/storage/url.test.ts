import { describe, expect, it } from "@jest/globals";
import { PermanentError } from "../../../lib/errors.js";
import { parseDumpUrl, presignedExpiry, redactUrl } from "../../../lib/storage/url.js";

const SIG =
  "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef";

describe("parseDumpUrl", () => {
  const s3 = (bucket: string, key: string, endpoint: string | null, region: string | null, presigned = false) =>
    expect.objectContaining({ kind: "s3", bucket, key, endpoint, region, presigned });

  it.each([
    // AWS virtual-hosted
    ["https://dumps.s3.amazonaws.com/coredumps/core.a.1", s3("dumps", "coredumps/core.a.1", "https://s3.amazonaws.com", "us-east-1")],
    ["https://dumps.s3.us-west-2.amazonaws.com/core.a.1", s3("dumps", "core.a.1", "https://s3.us-west-2.amazonaws.com", "us-west-2")],
    ["http://dumps.s3-us-west-2.amazonaws.com/core.a.1", s3("dumps", "core.a.1", "http://s3-us-west-2.amazonaws.com", "us-west-2")],
    ["https://my.dotted.bucket.s3.eu-central-1.amazonaws.com/k", s3("my.dotted.bucket", "k", "https://s3.eu-central-1.amazonaws.com", "eu-central-1")],
    ["https://s3data.s3.dualstack.ap-southeast-1.amazonaws.com/k", s3("s3data", "k", "https://s3.dualstack.ap-southeast-1.amazonaws.com", "ap-southeast-1")],
    // AWS path-style
    ["https://s3.us-west-2.amazonaws.com/dumps/dir/core.a.1", s3("dumps", "dir/core.a.1", "https://s3.us-west-2.amazonaws.com", "us-west-2")],
    ["https://s3.amazonaws.com/dumps/core", s3("dumps", "core", "https://s3.amazonaws.com", "us-east-1")],
    // Tencent COS (the bucket name carries the appid) and Aliyun OSS
    ["https://bucket-1250000000.cos.ap-nanjing.myqcloud.com/coredumps/core.x", s3("bucket-1250000000", "coredumps/core.x", "https://cos.ap-nanjing.myqcloud.com", "ap-nanjing")],
    ["https://bucket.oss-cn-hangzhou.aliyuncs.com/core.x", s3("bucket", "core.x", "https://oss-cn-hangzhou.aliyuncs.com", "cn-hangzhou")],
    ["http://bucket.oss-cn-hangzhou-internal.aliyuncs.com/core.x", s3("bucket", "core.x", "http://oss-cn-hangzhou-internal.aliyuncs.com", "cn-hangzhou")],
    // MinIO-style: path-style on an IP or single-label host when presigned
    [`http://minio:9000/dumps/core.x?${SIG}`, s3("dumps", "core.x", "http://minio:9000", null, true)],
    [`http://10.0.0.5:9000/dumps/a/b/core.x?${SIG}`, s3("dumps", "a/b/core.x", "http://10.0.0.5:9000", null, true)],
    // an unknown dotted host with a presigned URL: virtual-hosted (what CoreDog sends)
    [`http://dumps.store.example.com/coredumps/core.x?${SIG}`, s3("dumps", "coredumps/core.x", "http://store.example.com", null, true)],
    // presigned AWS
    [`http://dumps.s3.amazonaws.com/core.x?${SIG}`, s3("dumps", "core.x", "http://s3.amazonaws.com", "us-east-1", true)],
    // decoded keys: spaces, plus, unicode
    ["https://dumps.s3.amazonaws.com/a%20b/c+d/%E6%A0%B8%E5%BF%83.1", s3("dumps", "a b/c+d/核心.1", "https://s3.amazonaws.com", "us-east-1")],
    // s3://
    ["s3://dumps/coredumps/core%20x.1", { kind: "s3", bucket: "dumps", key: "coredumps/core x.1", url: null, presigned: false, endpoint: null, region: null }],
    // files
    ["cfs:///mnt/cfs/core.x.1", { kind: "file", path: "/mnt/cfs/core.x.1" }],
    ["cfs://mnt/cfs/core.x.1", { kind: "file", path: "/mnt/cfs/core.x.1" }],
    ["file:///var/dumps/core%201", { kind: "file", path: "/var/dumps/core 1" }],
    // plain http
    ["https://files.example.com/dumps/core.1", { kind: "http", url: "https://files.example.com/dumps/core.1" }],
    ["http://127.0.0.1:8080/core", { kind: "http", url: "http://127.0.0.1:8080/core" }],
  ])("%s", (raw, expected) => {
    expect(parseDumpUrl(raw)).toEqual(expected);
  });

  it("keeps the original URL for a presigned GET", () => {
    const raw = `http://minio:9000/dumps/core.x?${SIG}`;
    const loc = parseDumpUrl(raw);
    expect(loc.kind === "s3" && loc.url).toBe(raw);
  });

  it("uses the configured endpoint to tell path-style from virtual-hosted", () => {
    expect(parseDumpUrl("http://minio.corp.example:9000/dumps/core.x", { s3Endpoint: "http://minio.corp.example:9000" })).toEqual(
      expect.objectContaining({ kind: "s3", bucket: "dumps", key: "core.x", endpoint: "http://minio.corp.example:9000", presigned: false }),
    );
    expect(parseDumpUrl("http://dumps.minio.corp.example:9000/d/core.x", { s3Endpoint: "http://minio.corp.example:9000" })).toEqual(
      expect.objectContaining({ kind: "s3", bucket: "dumps", key: "d/core.x", endpoint: "http://minio.corp.example:9000" }),
    );
    // without the endpoint an unsigned custom URL is just http
    expect(parseDumpUrl("http://minio.corp.example:9000/dumps/core.x").kind).toBe("http");
  });

  it.each([
    "",
    "   ",
    "ftp://host/core",
    "javascript:alert(1)",
    "core.x",
    "/mnt/cfs/core",
    "s3://bucket",
    "s3:///key",
    "cfs://",
    "https://dumps.s3.amazonaws.com/",
    "https://s3.amazonaws.com/only-bucket",
    "http://u:p@host/core",
    "https://dumps.s3.amazonaws.com/%E0%A4%A",
  ])("refuses %j", (raw) => {
    let err: unknown;
    try {
      parseDumpUrl(raw);
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe("unsupported_url");
    // the message never carries the credentials of a refused URL
    expect((err as Error).message).not.toContain("u:p@");
  });
});

describe("redactUrl", () => {
  it("replaces signature, credential and token values, keeps the rest", () => {
    const raw = `http://minio:9000/dumps/core.x?${SIG}&X-Amz-Security-Token=SESSIONTOKEN&x-id=GetObject`;
    const out = redactUrl(raw);
    expect(out).not.toMatch(/deadbeef|AKIAEXAMPLE|SESSIONTOKEN/);
    expect(out).toContain("X-Amz-Signature=REDACTED");
    expect(out).toContain("X-Amz-Credential=REDACTED");
    expect(out).toContain("X-Amz-Security-Token=REDACTED");
    expect(out).toContain("X-Amz-Expires=3600");
    expect(out).toContain("X-Amz-Date=20240101T000000Z");
    expect(out).toContain("x-id=GetObject");
    expect(out.startsWith("http://minio:9000/dumps/core.x?")).toBe(true);
  });

  it.each([
    ["https://b.oss-cn-hangzhou.aliyuncs.com/k?OSSAccessKeyId=LTAI&Expires=1&Signature=abc%2B", "abc", "LTAI"],
    ["https://b-125.cos.ap-nanjing.myqcloud.com/k?q-sign-algorithm=sha1&q-ak=AKID&q-signature=f00", "f00", "AKID"],
    ["https://files.example.com/core?token=s3cr3t&access_token=t2", "s3cr3t", "t2"],
    ["https://user:pw@files.example.com/core#frag", "pw", "frag"],
  ])("%s", (raw, secret1, secret2) => {
    const out = redactUrl(raw);
    expect(out).not.toContain(secret1);
    expect(out).not.toContain(secret2);
  });

  it("drops the query of an unparsable string and never throws", () => {
    expect(redactUrl("not a url?X-Amz-Signature=abc")).toBe("not a url");
    expect(redactUrl("cfs:///mnt/cfs/core.1")).toBe("cfs:///mnt/cfs/core.1");
  });
});

describe("presignedExpiry", () => {
  it("reads X-Amz-Date + X-Amz-Expires", () => {
    expect(presignedExpiry(`http://h/b/k?${SIG}`)).toBe(Date.UTC(2024, 0, 1, 1, 0, 0));
  });
  it("reads SigV2 Expires and COS q-sign-time", () => {
    expect(presignedExpiry("https://b.oss-cn-hangzhou.aliyuncs.com/k?OSSAccessKeyId=a&Expires=1700000000&Signature=x")).toBe(1700000000000);
    expect(presignedExpiry("https://b.cos.ap-nanjing.myqcloud.com/k?q-sign-time=1700000000%3B1700003600&q-signature=x")).toBe(1700003600000);
  });
  it("is null for an unsigned URL", () => {
    expect(presignedExpiry("https://files.example.com/core")).toBeNull();
  });
});
