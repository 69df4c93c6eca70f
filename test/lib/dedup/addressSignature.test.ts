/** The address signature's pure parts: eu-stack's first thread, module + offset frames, the key. */
import { describe, expect, test } from "@jest/globals";
import { ADDRESS_FRAMES, addressSignatureOf, firstThreadPcs } from "../../../lib/dedup/addressSignature.js";
import type { InventoryModule } from "../../../lib/symbols/inventory.js";

const EU_STACK = `PID 14049 - core
TID 14053:
#0  0x0000561cc24d42a0
#1  0x0000561cc24d432a
#2  0x00007f5b4d3cf1f5
TID 14049:
#0  0x00007f5b4d3cbf16
`;

const mod = (path: string, build_id: string | null, start: number, end: number): InventoryModule => ({
  path,
  build_id,
  start: `0x${start.toString(16)}`,
  end: `0x${end.toString(16)}`,
  executable: false,
});

describe("firstThreadPcs", () => {
  test("takes the first TID block only (the signalled thread)", () => {
    expect(firstThreadPcs(EU_STACK)).toEqual([0x561cc24d42a0n, 0x561cc24d432an, 0x7f5b4d3cf1f5n]);
  });
  test("no thread, no PCs", () => {
    expect(firstThreadPcs("eu-stack: cannot read core\n")).toEqual([]);
  });
});

describe("addressSignatureOf", () => {
  const pcs = [0x561cc24d42a0n, 0x561cc24d432an, 0x7f5b4d3cf1f5n];
  const modules = [mod("/app", "aaaa", 0x561cc24d3000, 0x561cc24d8000), mod("/libc.so.6", "cccc", 0x7f5b4d346000, 0x7f5b4d528000)];

  test("frames are build-id + offset, so another ASLR base gives the same key", () => {
    const a = addressSignatureOf(pcs, modules, 11)!;
    expect(a.text).toBe("v1 sig=11 aaaa+0x12a0;aaaa+0x132a;cccc+0x891f5");
    const shift = 0x1000_0000n;
    const moved = [mod("/app", "aaaa", 0x561cc24d3000 + 0x1000_0000, 0x561cc24d8000 + 0x1000_0000), modules[1]!];
    const b = addressSignatureOf([pcs[0]! + shift, pcs[1]! + shift, pcs[2]!], moved, 11)!;
    expect(b.key).toBe(a.key);
    expect(a.key).toMatch(/^[0-9a-f]{32}$/);
  });

  test("another signal, another build or another offset is another key", () => {
    const a = addressSignatureOf(pcs, modules, 11)!.key;
    expect(addressSignatureOf(pcs, modules, 6)!.key).not.toBe(a);
    expect(addressSignatureOf(pcs, [mod("/app", "bbbb", 0x561cc24d3000, 0x561cc24d8000), modules[1]!], 11)!.key).not.toBe(a);
    expect(addressSignatureOf([pcs[0]! + 4n, pcs[1]!, pcs[2]!], modules, 11)!.key).not.toBe(a);
  });

  test("an address in no module is '?'; a module without build-id or no frame at all gives no signature", () => {
    expect(addressSignatureOf([0x1234n, ...pcs], modules, 11)!.text).toMatch(/^v1 sig=11 \?;aaaa/);
    expect(addressSignatureOf(pcs, [mod("/app", null, 0x561cc24d3000, 0x561cc24d8000), modules[1]!], 11)).toBeNull();
    expect(addressSignatureOf([], modules, 11)).toBeNull();
  });

  test(`only the top ${ADDRESS_FRAMES} frames count`, () => {
    const deep = Array.from({ length: ADDRESS_FRAMES + 5 }, (_, i) => 0x561cc24d4000n + BigInt(i));
    const deeper = [...deep.slice(0, ADDRESS_FRAMES), 0x7f5b4d350000n];
    expect(addressSignatureOf(deep, modules, 11)!.key).toBe(addressSignatureOf(deeper, modules, 11)!.key);
  });
});
