/**
 * Per-attempt job directories under `<WORK_DIR>/jobs/`.
 *
 * Each attempt gets its own directory (`<analysisId>-<random>`), so a
 * redelivery never meets a half-written file of an earlier attempt. A crash
 * leaves directories behind; `sweepWorkDir` removes them at start-up. Each
 * directory holds an `.owner` file (host, pid, a per-process token) so that a
 * sweep spares directories of another live worker process on the same host
 * sharing WORK_DIR. WORK_DIR is meant to be local to a host: directories owned
 * by another host are treated like a dead owner's.
 */
import { randomBytes } from "node:crypto";
import fsSync from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PermanentError } from "../errors.js";

const OWNER_FILE = ".owner";
/** Distinguishes this process from an earlier one that had the same pid (containers restart as pid 1). */
const PROCESS_TOKEN = randomBytes(8).toString("hex");

interface Owner {
  host: string;
  pid: number;
  token: string;
}

function jobsDir(workDir: string): string {
  return path.join(workDir, "jobs");
}

/** Keeps analysis ids usable as a directory name on every file system. */
function safeName(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_");
  return (s || "job").slice(0, 100);
}

/** Creates a fresh directory for one attempt at `analysisId`: `<workDir>/jobs/<analysisId>-<random>`. */
export async function createJobDir(workDir: string, analysisId: string): Promise<string> {
  const parent = jobsDir(workDir);
  await fs.mkdir(parent, { recursive: true });
  const dir = await fs.mkdtemp(path.join(parent, `${safeName(analysisId)}-`));
  const owner: Owner = { host: os.hostname(), pid: process.pid, token: PROCESS_TOKEN };
  await fs.writeFile(path.join(dir, OWNER_FILE), JSON.stringify(owner));
  return dir;
}

/** Removes a job directory and everything in it; a missing directory is fine. */
export async function removeJobDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 2 });
}

/**
 * removeJobDir, blocking: for a one-shot command (`analyze`), where nothing
 * else waits on the event loop once the analysis is done. Node's synchronous
 * removal is one native call, ~1 ms for analyze's job directory (the symbol
 * tree of links, gdb's index copies) against ~5 ms for the asynchronous one's
 * round trip per entry. Not for the worker: its heartbeats and other jobs
 * would wait while a dump's unlink takes as long as the disk does.
 */
export function removeJobDirSync(dir: string): void {
  fsSync.rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: unknown) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function ownerIsLive(dir: string): Promise<boolean> {
  let owner: Partial<Owner>;
  try {
    owner = JSON.parse(await fs.readFile(path.join(dir, OWNER_FILE), "utf8")) as Partial<Owner>;
  } catch {
    return false;
  }
  if (owner.token === PROCESS_TOKEN) return true;
  if (owner.host !== os.hostname() || typeof owner.pid !== "number") return false;
  return owner.pid !== process.pid && alive(owner.pid);
}

/**
 * Removes what crashed attempts left in `<workDir>/jobs/`: entries older than
 * `olderThanMs` (default 0: all) whose owner process is gone. Returns how many
 * entries were removed; a missing work directory counts as 0.
 */
export async function sweepWorkDir(workDir: string, opts: { olderThanMs?: number } = {}): Promise<number> {
  const parent = jobsDir(workDir);
  let names: string[];
  try {
    names = await fs.readdir(parent);
  } catch (e: unknown) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw e;
  }
  const cutoff = Date.now() - (opts.olderThanMs ?? 0);
  let removed = 0;
  for (const name of names) {
    const p = path.join(parent, name);
    try {
      const st = await fs.lstat(p);
      if (st.mtimeMs > cutoff) continue;
      if (st.isDirectory() && (await ownerIsLive(p))) continue;
      await fs.rm(p, { recursive: true, force: true });
      removed++;
    } catch {
      // Vanished meanwhile, or not ours to remove: the next sweep sees it again.
    }
  }
  return removed;
}

/**
 * The one way to name a path under a job directory (or any directory the
 * worker owns): `rel` is joined below `root` as data, never as path syntax
 * that may climb out. A leading "/" is part of the name (a module path from
 * a core), and a result outside `root` — `..` components, a NUL — is refused
 * with `invalid_input` instead of being folded into some other directory.
 * Lexical only: directories created below `root` must still not be symlinks
 * (see `mkdirInside`).
 */
export function confine(root: string, rel: string): string {
  const base = path.resolve(root);
  const parts = rel.split("/");
  if (rel.includes("\0") || parts.some((p) => p === "..")) {
    throw new PermanentError("invalid_input", `path ${JSON.stringify(rel)} would leave ${base}`);
  }
  const p = path.join(base, ...parts.filter((x) => x !== "" && x !== "."));
  if (p !== base && !p.startsWith(base + path.sep)) throw new PermanentError("invalid_input", `path ${JSON.stringify(rel)} would leave ${base}`);
  return p;
}

/**
 * Creates the directory `confine(root, rel)` one component at a time and
 * checks that each one is a real directory, not a symlink planted earlier
 * that would carry the next write elsewhere. `root` itself must exist.
 * `checked`, shared by the calls of one builder, holds the directories a call
 * created or checked already: they are skipped (a directory stays one: links
 * are only ever made where nothing is, see symbols/tree.ts place).
 */
export async function mkdirInside(root: string, rel: string, checked?: Set<string>): Promise<string> {
  const target = confine(root, rel);
  let cur = path.resolve(root);
  for (const part of path.relative(cur, target).split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    if (checked?.has(cur)) continue;
    try {
      await fs.mkdir(cur);
    } catch (e: unknown) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const st = await fs.lstat(cur);
    if (!st.isDirectory()) throw new PermanentError("invalid_input", `${cur} exists and is not a directory (a module path and a file collide)`);
    checked?.add(cur);
  }
  return target;
}
