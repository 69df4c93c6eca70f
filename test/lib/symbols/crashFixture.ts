/**
 * Real crashes for symbol tests: compiles small C programs with gcc in a temp
 * directory (always with a build-id) and crashes them into real cores
 * (`ulimit -c unlimited`; core_pattern here is `core` in the cwd).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";

export async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `coresight-${prefix}-`));
}

/** Compiles `source` (C) into `dir/name` with `-g -O0 -Wl,--build-id` plus `flags`. */
export async function compile(dir: string, name: string, source: string, flags: string[] = []): Promise<string> {
  const src = path.join(dir, `${name}.c`);
  await fs.writeFile(src, source);
  const out = path.join(dir, name);
  await execa("gcc", ["-g", "-O0", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", out, src, ...flags], { cwd: dir });
  return out;
}

/** `strip` into a copy, and the DWARF into `<out>.debug` (objcopy --only-keep-debug). */
export async function stripCopy(file: string, out: string): Promise<{ stripped: string; debug: string }> {
  const debug = `${out}.debug`;
  await execa("objcopy", ["--only-keep-debug", file, debug]);
  await execa("strip", ["-o", out, file]);
  return { stripped: out, debug };
}

/** Runs `exe` in `cwd` until it dies of a signal and returns the core it left. */
export async function crashIn(cwd: string, exe: string, args: string[] = []): Promise<string> {
  const core = path.join(cwd, "core");
  await fs.rm(core, { force: true });
  const quoted = [exe, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const r = await execa("bash", ["-c", `ulimit -c unlimited; exec ${quoted}`], { cwd, reject: false });
  if (!r.signal && (r.exitCode ?? 0) < 128) throw new Error(`${exe} did not crash (exit ${r.exitCode})`);
  await fs.access(core).catch(() => {
    throw new Error(`${exe} crashed (${r.signal ?? r.exitCode}) but left no core in ${cwd}: check ulimit -c and /proc/sys/kernel/core_pattern`);
  });
  return core;
}

/** The build-id as eu-readelf prints it: an independent check of our reader. */
export async function euBuildId(file: string): Promise<string | null> {
  const r = await execa("eu-readelf", ["-n", file], { reject: false });
  const m = /Build ID: ([0-9a-f]+)/.exec(r.stdout);
  return m ? m[1]! : null;
}

/** A program whose frame `crash_here` (file crash.c, a known line) dereferences NULL. */
export const NULL_DEREF = `#include <stdio.h>
struct item { int value; };
__attribute__((noinline)) int crash_here(struct item *it) {
  return it->value; /* CRASH LINE */
}
__attribute__((noinline)) int caller(int argc) {
  struct item *it = argc > 100 ? (struct item *)&argc : NULL;
  return crash_here(it) + 1;
}
int main(int argc, char **argv) {
  (void)argv;
  printf("%d\\n", caller(argc));
  return 0;
}
`;

/** The 1-based line of `marker` in `source`. */
export function lineOf(source: string, marker: string): number {
  return source.split("\n").findIndex((l) => l.includes(marker)) + 1;
}

/** A shared library whose `lib_crash` dereferences NULL; `variant` changes the build-id. */
export function librarySource(variant: string): string {
  return `int lib_counter_${variant} = 0;
__attribute__((noinline)) int lib_crash(int *p) {
  lib_counter_${variant}++;
  return *p + 1; /* LIB CRASH LINE */
}
`;
}

export const LIB_MAIN = `int lib_crash(int *p);
int main(void) { return lib_crash(0); }
`;

/** Compiles C++ `source` into `dir/name` with g++ (same flags as `compile`). */
export async function compileCxx(dir: string, name: string, source: string, flags: string[] = []): Promise<string> {
  const src = path.join(dir, `${name}.cpp`);
  await fs.writeFile(src, source);
  const out = path.join(dir, name);
  await execa("g++", ["-g", "-O0", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", out, src, ...flags], { cwd: dir });
  return out;
}

/** Throws, uncaught, by argv[1]: "std" a std::runtime_error, "derived" a class derived from it, "plain" a struct. */
export const CXX_THROW = `#include <stdexcept>
#include <string>
#include <cstring>
namespace app {
struct ConfigError : std::runtime_error { using std::runtime_error::runtime_error; };
struct Plain { int code; };
__attribute__((noinline)) void fail(const char *how, const std::string &path) {
  if (std::strcmp(how, "std") == 0) throw std::runtime_error("config file missing: " + path);
  if (std::strcmp(how, "derived") == 0) throw ConfigError("bad config: " + path);
  throw Plain{42};
}
}
int main(int argc, char **argv) { app::fail(argc > 1 ? argv[1] : "std", "/etc/app.yaml"); return 0; }
`;
