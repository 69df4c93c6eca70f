/**
 * The text of `coresight-worker symbols --help`, in a module of its own that imports nothing, so
 * that the help prints without loading the command's analysis code (the CLI
 * loads this module alone for `--help`; see worker/main.ts).
 */

/** The full help of `symbols`. */
export const HELP = `Usage: coresight-worker symbols <subcommand> [options]

A core from a pod arrives without its binaries. The worker finds each
module's exact file by build-id (the id the linker stamps into every ELF
file and the kernel records in the core), from, in order:
  exe           --exe FILE (the executable only)
  sysroot       --sysroot DIR / SYSROOT: the crashed container's files
  host          this machine's own files, only when the build-id matches
  symbol_store  SYMBOL_STORE: <build-id>/executable, <build-id>/debuginfo
                on a directory or s3://bucket/prefix (cached in
                SYMBOL_CACHE_DIR, bounded by SYMBOL_CACHE_MAX_BYTES)
  debuginfod    DEBUGINFOD_URLS: <url>/buildid/<build-id>/...
A file with another build-id is reported "mismatched" and never used.

Subcommands:
  add <file>... [--store DIR|s3://bucket/prefix] [--json]
      Store executables and debug files under their build-ids:
      <id>/executable for a file with code, <id>/debuginfo for a file with
      .debug_info (an unstripped binary is both). Run it in CI after
      building an image, on every binary and library you ship (and their
      objcopy --only-keep-debug files). Files without a build-id are
      refused: link with -Wl,--build-id.

  list <core> [--exe FILE] [--sysroot DIR] [--store DIR|s3://...]
              [--debuginfod "URL..."] [--order LIST] [--json]
      The core's modules (path, build-id, address range) and where each was
      found, or that it is missing or mismatched, with the build-ids to
      upload. Nothing is analyzed; remote files land in the cache.

  id <file>...
      Print each file's build-id and what it holds (code, dwarf, symtab).

Options:
  --store LOC     symbol store [default: SYMBOL_STORE]
  --exe FILE      the crashed executable, when you have it
  --sysroot DIR   directory with the container's files [default: SYSROOT]
  --debuginfod U  debuginfod URLs, space-separated [default: DEBUGINFOD_URLS]
  --order LIST    ladder order [default: exe,sysroot,host,symbol_store,debuginfod]
  --json          machine-readable output
  -h, --help      show this help

S3 stores use S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE, AWS_ACCESS_KEY_ID
and AWS_SECRET_ACCESS_KEY.

Examples:
  coresight-worker symbols add build/bin/* --store s3://symbols/myapp
  SYMBOL_STORE=/srv/symbols coresight-worker symbols list core.myapp.123
  coresight-worker symbols id ./myapp

Exit codes: 0 ok, 1 some file could not be stored / the core could not be
read, 2 usage error, 3 configuration error, 5 input file missing.
`;
