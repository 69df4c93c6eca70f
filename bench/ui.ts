/**
 * The crash browser's pages rendered server-side with 10,000 analyses in
 * the database (200 crash groups, 14 days of occurrences over 5 namespaces,
 * 10 images, 300 pods), on SQLite and a private PostgreSQL 15: GET over
 * HTTP from an in-process API, the whole answer read, median of repeated
 * requests. Every analysis holds a real result document (the null-deref
 * fixture analyzed by gdb), its signature varied per group. Measured, never
 * asserted.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startApiService, type ApiService } from "../api/service.js";
import { analyzeDump } from "../lib/analyze.js";
import { loadApiConfig } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import type { Result } from "../lib/result.js";
import { startPostgres } from "../dev/postgres.js";
import { median, type BenchTable } from "./table.js";

const ANALYSES = 10_000;
const GROUPS = 200;
const RUNS = 15;
const READ = "bench-read-token-0123456789";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function seed(api: ApiService, template: Result, now: number): Promise<{ hash: string; analysisId: string }> {
  const k = api.db.kysely;
  const at = (i: number) => new Date(now - Math.floor((i * 14 * 86400e3) / ANALYSES)).toISOString();
  await k.transaction().execute(async (trx) => {
    for (let g = 0; g < GROUPS; g++) {
      const hash = g.toString(16).padStart(16, "0");
      await trx
        .insertInto("crash_group")
        .values({
          signature_hash: hash,
          signature_text: `crash_${g} | main`,
          frames_json: JSON.stringify([`crash_${g}`, "main"]),
          created_at: at(ANALYSES),
          resolved_at: g % 10 === 0 ? at(ANALYSES / 2) : null,
        })
        .execute();
    }
    for (let i = 0; i < ANALYSES; i++) {
      // Skewed like production: a few groups hold most occurrences.
      const g = Math.floor(GROUPS * Math.pow(((i * 7919) % ANALYSES) / ANALYSES, 3));
      const hash = g.toString(16).padStart(16, "0");
      const received = at(i);
      const { id } = await trx
        .insertInto("coredump")
        .values({
          received_at: received,
          event_id: `coredog-${i}`,
          event_source: "coredog-agent",
          file_url: `s3://dumps/core.${i}`,
          file_name: `core.${i}`,
          executable_path: "/app/crash",
          file_size: 1024,
          md5: null,
          image: `registry/app:${i % 10}`,
          pod: `app-${i % 300}`,
          namespace: `ns-${i % 5}`,
          node: `node-${i % 7}`,
          timestamp: received,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      const doc = {
        ...template,
        signature: { text: `crash_${g} | main`, hash, frames: [`crash_${g}`, "main"] },
        analysis_id: `a-${i}`,
        attempt: 1,
        worker_id: "bench:1",
        event: null,
      };
      await trx
        .insertInto("analysis")
        .values({
          analysis_id: `a-${i}`,
          coredump_id: id,
          status: "completed",
          created_at: received,
          updated_at: received,
          started_at: received,
          completed_at: received,
          event_json: "null",
          result_json: JSON.stringify(doc),
          signature_hash: hash,
          signature_text: doc.signature.text,
          quality: template.quality,
          error_code: null,
          signal_name: template.signal?.name ?? null,
          attempt: 1,
          worker_id: "bench:1",
        })
        .execute();
    }
  });
  return { hash: "0000000000000000", analysisId: "a-0" };
}

async function timed(url: string): Promise<{ ms: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${READ}` } });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 200)}`);
    times.push(performance.now() - t);
    bytes = body.length;
  }
  return { ms: median(times), bytes };
}

async function one(kind: string, databaseUrl: string, template: Result): Promise<Array<Array<string | number>>> {
  const api = await startApiService(loadApiConfig({ DATABASE_URL: databaseUrl, API_LISTEN: "127.0.0.1:0", CORESIGHT_READ_TOKENS: READ, NATS_URL: "nats://127.0.0.1:1" }), {
    logger: createLogger({ level: "silent", stdout: false }),
  });
  try {
    const t = performance.now();
    const { hash, analysisId } = await seed(api, template, Date.now());
    const seedS = (performance.now() - t) / 1000;
    const pages: Array<[string, string]> = [
      ["group list (default: last seen)", "/ui/groups"],
      ["group list, sort=count, page 3", "/ui/groups?sort=count&page=3"],
      ["group list, namespace + image + since=7d", "/ui/groups?namespace=ns-1&image=registry%2Fapp%3A1&since=7d"],
      ["group list, signal=SIGSEGV", "/ui/groups?signal=SIGSEGV"],
      ["largest group's page (50 occurrences)", `/ui/groups/${hash}`],
      ["one analysis", `/ui/analyses/${analysisId}`],
      ["queue", "/ui/queue"],
    ];
    const rows: Array<Array<string | number>> = [];
    for (const [what, p] of pages) {
      const r = await timed(api.url + p);
      rows.push([kind, what, r.ms, Math.round(r.bytes / 1024), seedS]);
    }
    return rows;
  } finally {
    await api.stop();
  }
}

export default async function bench(): Promise<BenchTable> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-ui-"));
  const rows: Array<Array<string | number>> = [];
  try {
    const fx = path.join(root, "build/fixtures/null-deref");
    const template = await analyzeDump({ core: path.join(fx, "core"), exe: path.join(fx, "null-deref") });
    rows.push(...(await one("SQLite file", `sqlite:${path.join(dir, "ui.db")}`, template)));
    const pg = await startPostgres();
    try {
      rows.push(...(await one("PostgreSQL 15 (fsync off)", await pg.createDatabase("bench_ui"), template)));
    } finally {
      await pg.stop();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
  return {
    title: `Crash browser pages, server-side, ${ANALYSES} analyses in ${GROUPS} groups`,
    columns: ["database", "page", "median ms", "KiB", "seeding s"],
    rows,
    notes: [
      `GET with a read token over loopback, whole body read, median of ${RUNS}; the list aggregates every matching group in one query, then sorts and pages 25 in memory.`,
      "Each analysis row holds a real result document (null-deref, analyzed by gdb); the signal filter reads analysis.signal_name, set when the result is stored (migration 0004 fills it for older rows).",
    ],
  };
}
