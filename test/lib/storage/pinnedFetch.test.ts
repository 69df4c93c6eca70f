/**
 * pinnedFetch connects to the address the host policy checked, never to a
 * second resolution of the name (DNS rebinding, issue 9): a name that does
 * not resolve at all still reaches the pinned address, with its own Host.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { pinnedFetch } from "../../../lib/storage/pinnedFetch.js";

let server: http.Server;
let port: number;
const hosts: string[] = [];
beforeAll(async () => {
  server = http.createServer((req, res) => {
    hosts.push(req.headers.host ?? "");
    if (req.url === "/redirect") res.writeHead(302, { location: "/elsewhere" }).end();
    else res.writeHead(200, { "x-a": "1", "set-cookie": ["a=1", "b=2"] }).end("body bytes");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe("pinnedFetch", () => {
  test("connects to the pinned address whatever the name resolves to (here: nothing), sending the URL's Host", async () => {
    const res = await pinnedFetch(new URL(`http://rebind.invalid:${port}/core`), ["127.0.0.1"], { headers: { "accept-encoding": "identity" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-a")).toBe("1");
    expect(await res.text()).toBe("body bytes");
    expect(hosts.at(-1)).toBe(`rebind.invalid:${port}`);
  });

  test("does not follow redirects", async () => {
    const res = await pinnedFetch(new URL(`http://rebind.invalid:${port}/redirect`), ["127.0.0.1"]);
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/elsewhere");
  });

  test("without a pinned address (a host the operator named) the system resolver is used", async () => {
    const res = await pinnedFetch(new URL(`http://127.0.0.1:${port}/core`), []);
    expect(await res.text()).toBe("body bytes");
  });
});
