/**
 * In-app frames: the program's own code (its executable and libraries that
 * are not the system's), as opposed to the system's libraries (libc, the
 * dynamic loader, libstdc++, everything the distribution installs under
 * /lib and /usr/lib). Grouping uses it: a signature is built from in-app
 * frames, so the same bug hashes the same whether a worker has libc's debug
 * info or not, and a libc update does not split a group.
 *
 * A frame is in-app unless its module is a system library:
 * - a frame without a module (`library` null) is the executable's: gdb names
 *   the module only for shared objects (and the worker fills in the module
 *   of an unsymbolized frame, the executable's too);
 * - a module under one of SYSTEM_LIBRARY_DIRS is a system library, unless
 *   it is the executable itself (a program installed as /usr/lib/app/app).
 */
import type { Frame } from "../result.js";

/** Where distributions install shared libraries (Debian multiarch included). */
export const SYSTEM_LIBRARY_DIRS: readonly string[] = ["/lib/", "/lib32/", "/lib64/", "/libx32/", "/usr/lib/", "/usr/lib32/", "/usr/lib64/", "/usr/libx32/", "/usr/local/lib/"];

/** True when `frame` is the program's own code. `executable`: the crashed program's path, never system. */
export function isInApp(frame: Frame, executable: string | null = null): boolean {
  if (frame.signal_handler) return false;
  const lib = frame.library;
  if (lib === null) return true;
  if (executable !== null && lib === executable) return true;
  return !SYSTEM_LIBRARY_DIRS.some((d) => lib.startsWith(d)) && !/(^|\/)(ld-linux[^/]*|libc\.so[^/]*|libstdc\+\+\.so[^/]*|libgcc_s\.so[^/]*)$/.test(lib);
}
