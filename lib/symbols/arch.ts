/**
 * Which gdb can read a core: the native gdb for this machine's architecture
 * (and the 32-bit sibling it also supports), gdb-multiarch for the rest
 * (an aarch64 core analyzed on x86_64).
 */
import os from "node:os";

const NODE_ARCH: Record<string, string> = {
  x64: "x86_64",
  arm64: "aarch64",
  ia32: "i386",
  arm: "arm",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loongarch64",
  mips: "mips",
  mipsel: "mips",
  mips64el: "mips64",
};

/** This machine's architecture in the names `machineName` uses. */
export function hostMachine(arch: string = process.arch, endianness: string = os.endianness()): string {
  if (arch === "ppc64") return endianness === "LE" ? "ppc64le" : "ppc64";
  return NODE_ARCH[arch] ?? arch;
}

/** Architectures a distribution's native gdb for `host` also debugs. */
const NATIVE_ALSO: Record<string, string[]> = {
  x86_64: ["i386"],
  aarch64: ["arm"],
};

/** True when the core's architecture needs gdb-multiarch on this host. */
export function isForeign(coreMachine: string, host: string = hostMachine()): boolean {
  if (coreMachine === host) return false;
  return !(NATIVE_ALSO[host] ?? []).includes(coreMachine);
}
