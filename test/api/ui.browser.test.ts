/**
 * The crash browser in a real browser: Debian's headless Chromium driven by
 * playwright-core, against an in-process API on SQLite holding real
 * analyses of the fixture cores, reported to POST / and PUT back as the
 * worker does. Signs in through the form, walks list → group → analysis,
 * round-trips the filters through the URL, checks that a hostile function
 * name is inert text, and that the queue page refreshes itself under the
 * CSP. `UPDATE_SCREENSHOT=1` also writes docs/crash-browser.png.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { startApiService, type ApiService } from "../../api/service.js";
import { createLogger } from "../../lib/log.js";
import { repoRoot } from "../helpers/fixtures.js";
import { WORKER_TOKEN, agentEvent, apiConfig, databases, postAsAgent, type Databases } from "./helpers.js";
import { UI_FIXTURES, storeOccurrence, type Stored } from "./uiData.js";

const XSS = "<img src=x onerror=alert(1)>";
/** Elements whose right edge passes the viewport's, as "tag.class: text", when the page scrolls sideways. */
const STICKING_OUT = `(() => {
  if (document.documentElement.scrollWidth <= window.innerWidth) return [];
  return [...document.body.querySelectorAll("*")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map((e) => e.tagName.toLowerCase() + (e.className ? "." + String(e.className).replace(/ /g, ".") : "") + ": " + (e.textContent || "").trim().slice(0, 60));
})()`;
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

describe("crash browser in headless Chromium", () => {
  let dbs: Databases;
  let api: ApiService;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const stored: Stored[] = [];
  const dialogs: string[] = [];
  const cspViolations: string[] = [];

  beforeAll(async () => {
    dbs = await databases("sqlite");
    api = await startApiService(apiConfig(await dbs.fresh("browser")), { logger: createLogger({ level: "silent", stdout: false }) });
    let n = 0;
    for (const name of UI_FIXTURES) stored.push(await storeOccurrence(api.url, name, { n: ++n, namespace: n % 2 ? "prod" : "staging" }));
    // More occurrences of one crash, from other pods: a count and a sparkline above 1.
    for (let i = 0; i < 3; i++) stored.push(await storeOccurrence(api.url, "null-deref", { n: 100 + i, namespace: "prod", pod: `web-${i}` }));
    stored.push(
      await storeOccurrence(api.url, "div-zero", {
        n: 200,
        mutate: (r) => {
          const crash = r.threads.find((t) => t.number === r.crash_thread)!;
          for (const f of crash.frames) if (f.index === r.crash_frame!.index) f.function = XSS;
          return { ...r, crash_frame: { ...r.crash_frame!, function: XSS }, signature: { ...r.signature!, hash: "ffffeeeeddddcccc", text: XSS, frames: [XSS] } };
        },
      }),
    );
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await api?.stop();
    await dbs?.stop();
  });

  it("signs in with the login form and lands where it was going", async () => {
    await page.goto(`${api.url}/ui/groups?sort=count`);
    expect(new URL(page.url()).pathname).toBe("/ui/login");
    await page.fill("#token", WORKER_TOKEN);
    await page.click("button[type=submit].primary");
    await page.waitForURL((u) => u.pathname === "/ui/groups");
    expect(new URL(page.url()).search).toBe("?sort=count");
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === "coresight_ui")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    // The page's script cannot read the session.
    expect(await page.evaluate("document.cookie")).toBe("");
  });

  it("the group list shows every stored crash: one row per signature, each with its crash frame's file:line", async () => {
    await page.goto(`${api.url}/ui/groups`);
    const hashes = new Set(stored.map((s) => s.result.signature!.hash));
    hashes.add("ffffeeeeddddcccc");
    await expect(page.locator("table.groups tbody tr").count()).resolves.toBe(hashes.size);
    const text = await page.locator("table.groups").innerText();
    for (const s of stored) {
      const f = s.result.crash_frame!;
      if (f.file) expect(text).toContain(`${f.file}:${f.line}`);
    }
    const nullDeref = page.locator("table.groups tbody tr", { hasText: "null-deref.c" });
    await expect(nullDeref.locator("td.num").first().innerText()).resolves.toBe("4");
    await expect(nullDeref.locator("svg.spark rect").count()).resolves.toBe(14);
  });

  it("clicking a group, then one of its analyses, shows the crash frame's file:line in the summary", async () => {
    const nd = stored.find((s) => s.fixture === "null-deref")!;
    const where = `${nd.result.crash_frame!.file}:${nd.result.crash_frame!.line}`;
    await page.goto(`${api.url}/ui/groups`);
    await page.locator("table.groups tbody tr", { hasText: "null-deref.c" }).locator("a.group-link").click();
    await page.waitForURL((u) => u.pathname.startsWith("/ui/groups/"));
    await expect(page.locator("table.occurrences tbody tr").count()).resolves.toBe(4);
    await page.locator("a.analysis-link").first().click();
    await page.waitForURL((u) => u.pathname.startsWith("/ui/analyses/"));
    await expect(page.locator("#summary code.where").innerText()).resolves.toBe(where);
    await expect(page.locator("tr.crash").first().innerText()).resolves.toContain(where);
    expect(await page.locator("#summary").innerText()).toContain("SIGSEGV");
  });

  it("a frame whose function is an <img onerror> renders as text: visible, no element, no dialog", async () => {
    for (const p of ["/ui/groups", "/ui/groups/ffffeeeeddddcccc"]) {
      await page.goto(api.url + p);
      await expect(page.getByText(XSS, { exact: true }).first().isVisible()).resolves.toBe(true);
      await expect(page.locator("main img").count()).resolves.toBe(0);
    }
    await page.locator("a.analysis-link").first().click();
    await page.waitForURL((u) => u.pathname.startsWith("/ui/analyses/"));
    await expect(page.locator("#summary code.fn").innerText()).resolves.toBe(XSS);
    await page.waitForTimeout(200);
    expect(dialogs).toEqual([]);
  });

  it("filters round-trip through the URL: the form writes them, a reload or a shared link keeps them", async () => {
    await page.goto(`${api.url}/ui/groups`);
    await page.selectOption("select[name=namespace]", "prod");
    await page.selectOption("select[name=signal]", "SIGSEGV");
    await page.selectOption("select[name=sort]", "count");
    await page.click("form.filters button[type=submit]");
    await page.waitForURL((u) => u.searchParams.get("namespace") === "prod");
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ namespace: "prod", signal: "SIGSEGV", sort: "count" });
    const rows = await page.locator("table.groups tbody tr").allInnerTexts();
    const groupsShown = (p: Page) => p.locator("table.groups a.group-link").allInnerTexts();
    const shown = await groupsShown(page);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r).toContain("SIGSEGV");
    expect(rows.length).toBeLessThan(new Set(stored.map((s) => s.result.signature!.hash)).size);
    // The same URL in a fresh page (a link someone pasted) shows the same view, with the form filled in.
    const other = await context.newPage();
    await other.goto(url.toString());
    await expect(groupsShown(other)).resolves.toEqual(shown);
    await expect(other.locator("select[name=namespace]").inputValue()).resolves.toBe("prod");
    await expect(other.locator("select[name=signal]").inputValue()).resolves.toBe("SIGSEGV");
    await expect(other.locator("select[name=sort]").inputValue()).resolves.toBe("count");
    await other.close();
  });

  it("resolve from the group page marks it resolved; the queue page refreshes its counts by itself", async () => {
    await page.goto(`${api.url}/ui/groups/ffffeeeeddddcccc`);
    await page.click("text=Mark resolved");
    await page.waitForURL((u) => u.pathname === "/ui/groups/ffffeeeeddddcccc");
    await expect(page.locator("h1 .badge").innerText()).resolves.toBe("resolved");
    await page.goto(`${api.url}/ui/queue`);
    const before = Number(await page.locator('[data-count="queued"]').innerText());
    await postAsAgent(api.url, agentEvent({ id: "coredog-1765567205-queue", fileUrl: "http://127.0.0.1:9/core.queue.1" }));
    // Polled by /ui/static/queue.js every 5 s (no reload: the page's own script, allowed by the CSP).
    await page.locator('[data-count="queued"]', { hasText: new RegExp(`^${before + 1}$`) }).waitFor({ timeout: 30_000 });
    expect(cspViolations).toEqual([]);
  });

  it("is readable on a phone-sized screen (rows stack), and in the dark theme", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", storageState: await context.storageState() });
    const p = await phone.newPage();
    for (const width of [390, 320]) {
      await p.setViewportSize({ width, height: 844 });
      for (const where of ["/ui/groups", `/ui/groups/${stored[0]!.result.signature!.hash}`, `/ui/analyses/${stored[0]!.analysisId}`, "/ui/queue"]) {
        await p.goto(`${api.url}${where}`);
        // Named, so a failure says which element sticks out (fonts differ between machines).
        await expect(p.evaluate<string[]>(STICKING_OUT)).resolves.toEqual([]);
      }
    }
    await p.goto(`${api.url}/ui/groups`);
    const bg = await p.evaluate<string>("getComputedStyle(document.body).backgroundColor");
    expect(bg).toBe("rgb(15, 18, 22)");
    await phone.close();
    if (process.env.UPDATE_SCREENSHOT === "1") {
      await page.goto(`${api.url}/ui/groups`);
      await page.screenshot({ path: path.join(repoRoot, "docs/crash-browser.png"), fullPage: true });
    }
  });
});
