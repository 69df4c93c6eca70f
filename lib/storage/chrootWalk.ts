/**
 * Name resolution as inside a chroot, over any tree: an absolute symlink
 * target restarts at the root, `..` never climbs above it, at most 40 hops
 * (the kernel's limit). Shared by the sysroot and host sources (a directory
 * on disk, lib/symbols/resolve.ts) and by image layers (an index of tar
 * entries, lib/registry/layers.ts): a path from a core or an image is data,
 * and both must land inside their root the same way.
 */

/** What a tree holds at one name: a directory, a symlink, another leaf (a file), or nothing. */
export type WalkNode<T> = { kind: "dir" } | { kind: "symlink"; target: string } | { kind: "leaf"; value: T } | null;

/**
 * Resolves absolute or relative `p` component by component through `lookup`
 * (given the components resolved so far plus the next one). Returns the
 * final components and what is there; null when a component is missing, a
 * leaf is followed by more components, or symlinks loop.
 */
export async function walkChrooted<T>(
  p: string,
  lookup: (parts: string[]) => Promise<WalkNode<T>> | WalkNode<T>,
): Promise<{ parts: string[]; node: Exclude<WalkNode<T>, null | { kind: "symlink" }> } | null> {
  let todo = p.split("/").filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  let last: Exclude<WalkNode<T>, null | { kind: "symlink" }> = { kind: "dir" };
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop();
      last = { kind: "dir" };
      continue;
    }
    const node = await lookup([...done, part]);
    if (!node) return null;
    if (node.kind === "symlink") {
      if (++hops > 40) return null;
      if (node.target.startsWith("/")) done.length = 0;
      todo = [...node.target.split("/").filter(Boolean), ...todo];
      continue;
    }
    if (node.kind === "leaf" && todo.length > 0) return null; // a file in the middle of a path
    done.push(part);
    last = node;
  }
  return { parts: done, node: last };
}
