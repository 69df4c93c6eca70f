/**
 * Real crashes made by a test: compiles a small C program into a directory
 * of the test's own and runs it with cores enabled, so that the core holds
 * exactly what the test needs (a path, an argv) without a committed fixture.
 * core_pattern here is `core` (ENV-NOTES): the kernel writes it in the cwd.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";

export interface Crash {
  exe: string;
  core: string;
}

/**
 * Builds `source` as `<dir>/<name>` (linked with `libs`, given after it) and runs `./<name> ...args` in `dir`
 * until it dumps core. Throws when no core appeared.
 */
export async function crashProgram(opts: { dir: string; source: string; name?: string; args?: string[]; cflags?: string[]; libs?: string[] }): Promise<Crash> {
  const name = opts.name ?? "p";
  await fs.mkdir(opts.dir, { recursive: true });
  const src = path.join(opts.dir, `${name}.c`);
  const exe = path.join(opts.dir, name);
  await fs.writeFile(src, opts.source);
  await execa("gcc", ["-g", "-O0", "-pthread", ...(opts.cflags ?? []), "-o", exe, src, ...(opts.libs ?? [])]);
  const core = path.join(opts.dir, "core");
  await fs.rm(core, { force: true });
  // "$@" keeps each argument whole, newlines included.
  await execa("bash", ["-c", 'ulimit -c unlimited; exec "$@"', "bash", `./${name}`, ...(opts.args ?? [])], { cwd: opts.dir, reject: false, env: {}, extendEnv: false });
  const st = await fs.stat(core).catch(() => null);
  if (!st?.size) throw new Error(`no core written in ${opts.dir}: is core_pattern \`core\`? (cat /proc/sys/kernel/core_pattern)`);
  return { exe, core };
}

const NT_FILE = 0x46494c45;
const PT_NOTE = 4;

/**
 * Rewrites the file names of a 64-bit little-endian core's NT_FILE note in
 * place: `rename` gets each name and returns its replacement, at most as
 * long (shorter ones are padded with leading slashes, which a path reader
 * folds away). This is how a hostile core names its modules: the note is
 * plain bytes the producer of the core chose.
 */
export async function rewriteNtFileNames(core: string, rename: (name: string) => string): Promise<number> {
  const buf = await fs.readFile(core);
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error(`${core}: not a 64-bit little-endian ELF`);
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  let changed = 0;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (buf.readUInt32LE(ph) !== PT_NOTE) continue;
    const off = Number(buf.readBigUInt64LE(ph + 8));
    const end = off + Number(buf.readBigUInt64LE(ph + 32));
    for (let n = off; n + 12 <= end;) {
      const namesz = buf.readUInt32LE(n);
      const descsz = buf.readUInt32LE(n + 4);
      const type = buf.readUInt32LE(n + 8);
      const desc = n + 12 + align4(namesz);
      if (type === NT_FILE) {
        const count = Number(buf.readBigUInt64LE(desc));
        let s = desc + 16 + count * 24;
        for (let k = 0; k < count; k++) {
          const z = buf.indexOf(0, s);
          const old = buf.toString("latin1", s, z);
          const next = rename(old);
          if (next !== old) {
            if (next.length > old.length) throw new Error(`replacement for ${old} is longer (${next.length} > ${old.length})`);
            buf.write("/".repeat(old.length - next.length) + next, s, "latin1");
            changed++;
          }
          s = z + 1;
        }
      }
      n = desc + align4(descsz);
    }
  }
  await fs.writeFile(core, buf);
  return changed;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
