/**
 * The union of layer indexes (pure): newest layer wins, whiteouts and opaque
 * directories hide older entries, symlinks resolve across layers and stay
 * inside the image, hard links name the entry with the bytes.
 */
import { describe, expect, test } from "@jest/globals";
import { lookupInImage, type LayerIndex } from "../../../lib/registry/layers.js";

const layer = (digest: string, entries: LayerIndex["entries"], whiteouts: string[] = [], opaque: string[] = []): LayerIndex => ({ digest, entries, whiteouts, opaque });

// Newest first, as lookupInImage takes them.
const base = layer("base", {
  lib: { t: "s", l: "usr/lib" },
  usr: { t: "d" },
  "usr/lib": { t: "d" },
  "usr/lib/libc.so.6": { t: "f", n: 100 },
  "usr/lib/libm.so.6": { t: "f", n: 50 },
  "usr/lib/libz.so.1": { t: "f", n: 60 },
  "usr/lib/liba.so": { t: "h", l: "usr/lib/libm.so.6" },
  etc: { t: "d" },
  "etc/conf": { t: "f", n: 1 },
  "etc/conf.d": { t: "d" },
  "etc/conf.d/x": { t: "f", n: 1 },
  escape: { t: "s", l: "../../../../usr/lib/libc.so.6" },
  loop: { t: "s", l: "/loop" },
});
const mid = layer("mid", { "usr/lib/libc.so.6": { t: "f", n: 200 }, srv: { t: "d" }, "srv/app": { t: "d" }, "srv/app/bin": { t: "f", n: 9 } }, ["usr/lib/libz.so.1"]);
const top = layer("top", { app: { t: "s", l: "/srv/app" }, etc: { t: "d" }, "etc/new": { t: "f", n: 2 } }, [], ["etc"]);
const stack = [top, mid, base];

describe("lookupInImage", () => {
  test.each([
    ["the newest layer holding a name wins", "/usr/lib/libc.so.6", { layer: 1, name: "usr/lib/libc.so.6", size: 200 }],
    ["a symlinked directory of the base layer", "/lib/libm.so.6", { layer: 2, name: "usr/lib/libm.so.6", size: 50 }],
    ["a symlink in the top layer into an older layer", "/app/bin", { layer: 1, name: "srv/app/bin", size: 9 }],
    ["a hard link gives the entry with the bytes", "/usr/lib/liba.so", { layer: 2, name: "usr/lib/libm.so.6", size: 50 }],
    ["`..` never climbs above the image root", "/escape", { layer: 1, name: "usr/lib/libc.so.6", size: 200 }],
    ["an entry of the opaque directory's own layer stays", "/etc/new", { layer: 0, name: "etc/new", size: 2 }],
  ])("%s", async (_what, p, want) => {
    expect(await lookupInImage(stack, p)).toEqual(want);
  });

  test.each([
    ["a whiteout hides the older file", "/usr/lib/libz.so.1"],
    ["an opaque directory hides everything older under it", "/etc/conf"],
    ["…at any depth", "/etc/conf.d/x"],
    ["a symlink loop", "/loop"],
    ["a file in the middle of a path", "/usr/lib/libc.so.6/x"],
    ["a directory is not a file", "/usr/lib"],
    ["absent", "/nope"],
    ["a name of Object.prototype", "/constructor"],
    ["…inside a directory", "/usr/__proto__"],
  ])("%s: null", async (_what, p) => {
    expect(await lookupInImage(stack, p)).toBeNull();
  });

  test("without the whiteout layer the older file is visible", async () => {
    expect(await lookupInImage([base], "/usr/lib/libz.so.1")).toMatchObject({ layer: 0 });
  });
});
