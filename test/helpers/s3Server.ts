// s3rver in a child process; the implementation is shared with `make demo` and the benchmarks.
export * from "../../dev/s3.js";
