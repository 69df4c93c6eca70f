/**
 * The text of `coresight-worker analyze --help`, in a module of its own that imports nothing, so
 * that the help prints without loading the command's analysis code (the CLI
 * loads this module alone for `--help`; see worker/main.ts).
 */

/** The full help of `analyze`. */
export const HELP = `Usage: coresight-worker analyze <core> [--exe PATH] [--sysroot DIR] [--image REF] [--json]
                                [--symbol-store DIR|s3://bucket/prefix]
                                [--debuginfod URLS] [--timeout SECONDS]
                                [--gdb PATH] [--max-frames N]

Runs the worker's own analysis on a core dump: finds every module the core
names by its build-id (--exe, --sysroot, this machine, the symbol store,
debuginfod), then runs gdb once (batch mode, no init files, no auto-loaded
scripts, no network) on exactly those files, and prints what crashed: the
signal and what it means, the crash thread, the crash frame (the first frame
in the program's own code, below abort/assert/C++ terminate/Rust panic
machinery), the top frames, the abort or assert message, an uncaught C++
exception's type and what(), the signature (text + hash, to group the same
crash), the symbol quality and which modules were found. gzip- and
zstd-compressed dumps are decompressed first (detected by content, not by
name), to at most MAX_DUMP_BYTES (too_large past it; a dump still
compressed after that is unsupported_compression). A module whose build-id matches no file is listed with its build-id:
upload that build with \`coresight-worker symbols add\`.

Options:
  --exe PATH          the executable that crashed (default: found by the
                      core's build-id, or the path the core names)
  --sysroot DIR       the crashed container's files (an extracted image):
                      libraries are looked up there first [default: SYSROOT]
  --image REF         the crashed container's image (as an event's data.image):
                      its files are pulled from the registry by build-id
                      (IMAGE_SYMBOLS, REGISTRY_*, IMAGE_CACHE_*)
  --symbol-store LOC  symbol store, a directory or s3://bucket/prefix (S3
                      credentials from AWS_*/S3_*) [default: SYMBOL_STORE]
  --debuginfod URLS   debuginfod servers, space- or comma-separated; "" for
                      none [default: DEBUGINFOD_URLS]
  --json              print the result document (schema v1; see
                      \`coresight-worker schema\`), also for a failed analysis
  --timeout SECONDS   kill gdb after this long (default: GDB_TIMEOUT_MS, 300 s)
  --gdb PATH          gdb binary (default: GDB_PATH, "gdb"); a core of another
                      architecture goes to GDB_MULTIARCH_PATH (gdb-multiarch)
  --max-frames N      frames per thread (default: GDB_MAX_FRAMES, 256)
  -h, --help          show this help

Downloaded symbols are cached in SYMBOL_CACHE_DIR ($WORK_DIR/symbols), as
the worker does; the per-run files go under $WORK_DIR/jobs and are removed.

Examples:
  coresight-worker analyze core.1234
  coresight-worker analyze core.myapp.1234.node1.1700000000 --exe ./build/myapp
  coresight-worker analyze core --symbol-store s3://symbols/myapp
  coresight-worker analyze core --debuginfod https://debuginfod.debian.net
  coresight-worker analyze dump.zst --sysroot /srv/images/myapp-1.4 --json | jq .signature
  coresight-worker analyze core --gdb /opt/gdb/bin/gdb --timeout 60

Exit codes:
  0  analysis completed
  1  analysis failed (not a core, truncated core, gdb error or timeout);
     the error code and message are printed (with --json, the failed result)
  2  usage error (unknown option, no core given)
  3  configuration error (an environment variable has a bad value, or an S3
     symbol store without S3 credentials)
  4  gdb is not installed (or --gdb does not exist)
  5  the core file (or --exe) is missing or unreadable, or not a regular
     file (a FIFO, a device, a symlink loop)
`;
