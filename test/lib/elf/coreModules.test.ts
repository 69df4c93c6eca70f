/**
 * The modules read from a core's own memory against eu-unstrip's list of the
 * same core: the same files, build-ids and load addresses, so that skipping
 * the eu-unstrip process changes no result.
 */
import { describe, expect, test } from "@jest/globals";
import { modulesFromCoreMemory } from "../../../lib/elf/coreModules.js";
import { readCoreNotes } from "../../../lib/elf/coreNotes.js";
import { buildInventory } from "../../../lib/symbols/inventory.js";
import { listCoreModules } from "../../../lib/symbols/unstrip.js";
import { FIXTURE_NAMES, requireFixture } from "../../helpers/fixtures.js";

const PAGE = 4096n;

describe("modulesFromCoreMemory on the fixture cores", () => {
  test.each([...FIXTURE_NAMES])("%s: the inventory eu-unstrip gives, or null to ask it", async (name) => {
    const { core } = requireFixture(name);
    const notes = await readCoreNotes(core);
    const native = await modulesFromCoreMemory(core, notes);
    if (name === "go-nil-deref") {
      // Go's GNU build-id note is outside its PT_NOTE segment: eu-unstrip must answer.
      expect(native).toBeNull();
      return;
    }
    expect(native).not.toBeNull();
    const ours = buildInventory(native!, notes);
    const theirs = buildInventory(await listCoreModules(core), notes);
    const key = (m: { path: string; build_id: string | null; start: string | null; executable: boolean }) => `${m.path} ${m.build_id} ${m.start} ${m.executable}`;
    // eu-unstrip's order is elfutils' internal one; ours is the executable first, then by address.
    expect(ours.modules.map(key).sort()).toEqual(theirs.modules.map(key).sort());
    expect(ours.executable).toBe(theirs.executable);
    // eu-unstrip ends a module at its last segment's end when the file is on
    // this machine, page-rounded when it rebuilt it from the core; ours is always
    // the page-rounded end: the same pages.
    const ends = new Map(theirs.modules.map((m) => [m.start, BigInt(m.end!)]));
    for (const m of ours.modules) {
      const theirEnd = ends.get(m.start)!;
      expect(BigInt(m.end!)).toBe(((theirEnd + PAGE - 1n) / PAGE) * PAGE);
    }
  });
});
