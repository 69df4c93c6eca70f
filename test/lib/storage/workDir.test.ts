import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { createJobDir, removeJobDir, sweepWorkDir } from "../../../lib/storage/workDir.js";

let work: string;
beforeEach(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), "workdir-"));
});
afterEach(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

describe("job directories", () => {
  it("creates a unique directory per attempt under jobs/ and removes it", async () => {
    const a = await createJobDir(work, "an/id with spaces");
    const b = await createJobDir(work, "an/id with spaces");
    expect(a).not.toBe(b);
    expect(path.dirname(a)).toBe(path.join(work, "jobs"));
    expect(path.basename(a)).toMatch(/^an_id_with_spaces-/);
    await fs.writeFile(path.join(a, "core"), "x");
    await removeJobDir(a);
    await expect(fs.stat(a)).rejects.toThrow();
    await removeJobDir(a); // twice is fine
    await removeJobDir(b);
  });

  it("sweeps leftovers of a dead process, spares live owners and young entries", async () => {
    const jobs = path.join(work, "jobs");
    await fs.mkdir(jobs, { recursive: true });
    // A leftover of a crashed worker: its pid is gone.
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => dead.once("exit", r));
    const crashed = path.join(jobs, "crashed-abc");
    await fs.mkdir(crashed);
    await fs.writeFile(path.join(crashed, ".owner"), JSON.stringify({ host: os.hostname(), pid: dead.pid, token: "old" }));
    await fs.writeFile(path.join(crashed, "core.part"), "partial");
    // A directory without an owner file, and a stray file.
    await fs.mkdir(path.join(jobs, "orphan-1"));
    await fs.writeFile(path.join(jobs, "stray.part"), "x");
    // Another live worker process on this host.
    const live = spawn(process.execPath, ["-e", "setTimeout(()=>{}, 60000)"]);
    try {
      const other = path.join(jobs, "other-live");
      await fs.mkdir(other);
      await fs.writeFile(path.join(other, ".owner"), JSON.stringify({ host: os.hostname(), pid: live.pid, token: "x" }));
      // This process's own job.
      const mine = await createJobDir(work, "mine");

      expect(await sweepWorkDir(work)).toBe(3);
      const left = (await fs.readdir(jobs)).sort();
      expect(left).toEqual([path.basename(mine), "other-live"].sort());
    } finally {
      live.kill("SIGKILL");
      await new Promise((r) => live.once("exit", r));
    }
  });

  it("keeps entries younger than olderThanMs, and a missing work dir sweeps 0", async () => {
    const jobs = path.join(work, "jobs");
    await fs.mkdir(path.join(jobs, "young"), { recursive: true });
    expect(await sweepWorkDir(work, { olderThanMs: 60_000 })).toBe(0);
    const old = new Date(Date.now() - 120_000);
    await fs.utimes(path.join(jobs, "young"), old, old);
    expect(await sweepWorkDir(work, { olderThanMs: 60_000 })).toBe(1);
    expect(await sweepWorkDir(path.join(work, "nope"))).toBe(0);
  });
});
