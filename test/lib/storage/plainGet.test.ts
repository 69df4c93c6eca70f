/**
 * plainGet against a raw TCP server that writes exact bytes, split where a
 * parser is most likely to slip (inside the head, a chunk-size line, a CRLF):
 * the body is the bytes the framing says, whatever the reads.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { afterEach, describe, expect, test } from "@jest/globals";
import { plainGet, recycle, type Recyclable } from "../../../lib/storage/plainGet.js";

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server that answers each connection with `parts`, written one at a time (a pause between), then closes unless `keepOpen`. */
async function serve(parts: Buffer[], opts: { end?: boolean } = {}): Promise<{ url: URL; requests: string[] }> {
  const requests: string[] = [];
  const server = net.createServer((sock) => {
    // A client that gives up mid-response (the refusals below) resets the connection under the writes.
    sock.on("error", () => undefined);
    sock.once("data", async (d) => {
      requests.push(d.toString("latin1"));
      for (const p of parts) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, 2));
      }
      if (opts.end !== false) sock.end();
      else sock.destroy();
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: new URL(`http://name.invalid:${(server.address() as AddressInfo).port}/core?x=1`), requests };
}

async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** `text` cut into pieces of `size` bytes. */
function pieces(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

const latin = (s: string) => Buffer.from(s, "latin1");

describe("plainGet", () => {
  test("sends one GET with the URL's Host and path to the pinned address, and reads a Content-Length body", async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    const { url, requests } = await serve([latin(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-A: 1\r\nX-A: 2\r\n\r\n`), body]);
    const res = await plainGet(url, ["127.0.0.1"], { headers: { "accept-encoding": "identity" } });
    expect(res.status).toBe(200);
    expect(res.headers["x-a"]).toBe("1");
    expect((await readAll(res.body)).equals(body)).toBe(true);
    expect(requests[0]).toMatch(/^GET \/core\?x=1 HTTP\/1\.1\r\nHost: name\.invalid:\d+\r\naccept-encoding: identity\r\nConnection: close\r\n\r\n$/);
  });

  test("decodes chunked coding (extensions, trailer) split a few bytes per read, after a 100 Continue", async () => {
    const a = randomBytes(70_000);
    const b = randomBytes(5);
    const wire = Buffer.concat([
      latin("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
      latin(`${a.length.toString(16)};name=value\r\n`),
      a,
      latin(`\r\n${b.length.toString(16).toUpperCase()}\r\n`),
      b,
      latin("\r\n0\r\nX-Trailer: t\r\n\r\n"),
    ]);
    const { url } = await serve([...pieces(wire.subarray(0, 200), 3), wire.subarray(200, 70_100), ...pieces(wire.subarray(70_100), 2)]);
    const res = await plainGet(url, ["127.0.0.1"]);
    expect(res.status).toBe(200);
    expect((await readAll(res.body)).equals(Buffer.concat([a, b]))).toBe(true);
  });

  test("a server that sends interim (1xx) responses without end is refused after 16, in one read or many", async () => {
    const flood = latin("HTTP/1.1 100 Continue\r\n\r\n".repeat(50_000) + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    const { url } = await serve([flood]);
    await expect(plainGet(url, ["127.0.0.1"])).rejects.toThrow(/more than 16 interim \(1xx\) responses/);
    // Sixteen are still fine.
    const { url: few } = await serve([latin("HTTP/1.1 103 Early Hints\r\n\r\n".repeat(16) + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")]);
    const res = await plainGet(few, ["127.0.0.1"]);
    expect((await readAll(res.body)).toString()).toBe("x");
  });

  test("buffers handed back are read into again, and what was read before is never overwritten while held", async () => {
    const body = randomBytes(40 * 1024 * 1024 + 5);
    const { url } = await serve([latin(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), ...pieces(body, 3 * 1024 * 1024)]);
    const res = await plainGet(url, ["127.0.0.1"]);
    const giveBack = (res.body as Recyclable)[recycle]!;
    const copies: Buffer[] = [];
    const held: Array<{ view: Buffer; copy: Buffer }> = [];
    const buffers = new Set<ArrayBufferLike>();
    // 'data' (flowing mode) sees each chunk as pushed; `for await` may concatenate.
    res.body.on("data", (view: Buffer) => {
      buffers.add(view.buffer);
      copies.push(Buffer.from(view));
      // Hold a few views (as writes in flight do), give the oldest back.
      held.push({ view, copy: copies.at(-1)! });
      if (held.length > 8) {
        const old = held.shift()!;
        expect(old.view.equals(old.copy)).toBe(true);
        giveBack([old.view]);
      }
    });
    await new Promise((resolve, reject) => res.body.once("end", resolve).once("error", reject));
    for (const h of held) expect(h.view.equals(h.copy)).toBe(true);
    expect(Buffer.concat(copies).equals(body)).toBe(true);
    // 40 MiB read into far fewer than 40 buffers of 1 MiB.
    expect(buffers.size).toBeLessThan(20);
  });

  test("a body without Content-Length or chunked coding is read to the connection's end", async () => {
    const body = randomBytes(200_000);
    const { url } = await serve([latin("HTTP/1.0 200 OK\r\n\r\n"), body]);
    const res = await plainGet(url, ["127.0.0.1"]);
    expect((await readAll(res.body)).equals(body)).toBe(true);
  });

  test("a connection closed before Content-Length bytes fails the body", async () => {
    const { url } = await serve([latin("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), randomBytes(10)]);
    const res = await plainGet(url, ["127.0.0.1"]);
    await expect(readAll(res.body)).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  test("a connection reset before the last chunk fails the body", async () => {
    const { url } = await serve([latin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789")], { end: false });
    const res = await plainGet(url, ["127.0.0.1"]);
    await expect(readAll(res.body)).rejects.toThrow();
  });

  test("refuses what is not an HTTP/1.x response, and header values that would split the request", async () => {
    const { url } = await serve([latin("SSH-2.0-OpenSSH_9.2\r\n\r\n")]);
    await expect(plainGet(url, ["127.0.0.1"])).rejects.toThrow(/status line/);
    const chunked = await serve([latin("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")]);
    const res = await plainGet(chunked.url, ["127.0.0.1"]);
    await expect(readAll(res.body)).rejects.toThrow(/chunk size/);
    await expect(plainGet(url, ["127.0.0.1"], { headers: { "x-a": "1\r\nHost: evil" } })).rejects.toThrow(/Invalid character/);
  });

  test("an abort after the head destroys the body with the signal's reason", async () => {
    const { url } = await serve([latin("HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"), randomBytes(1000)], { end: false });
    const ctl = new AbortController();
    const res = await plainGet(url, ["127.0.0.1"], { signal: ctl.signal });
    ctl.abort(new Error("watchdog"));
    await expect(readAll(res.body)).rejects.toThrow("watchdog");
  });
});
