import { describe, expect, it } from "@jest/globals";
import { codeName, parseSiginfo, signalOf } from "../../../lib/gdb/signal.js";

// What gdb 13 prints for `print $_siginfo` on a null-pointer write.
const SEGV = `$1 = {si_signo = 11, si_errno = 0, si_code = 1, __pad0 = 0, _sifields = {_pad = {0 <repeats 28 times>}, _kill = {si_pid = 0, si_uid = 0}, _timer = {si_tid = 0, si_overrun = 0, si_sigval = {sival_int = 0, sival_ptr = 0x0}}, _rt = {si_pid = 0, si_uid = 0, si_sigval = {sival_int = 0, sival_ptr = 0x0}}, _sigchld = {si_pid = 0, si_uid = 0, si_status = 0, si_utime = 0, si_stime = 0}, _sigfault = {si_addr = 0x0, _addr_lsb = 0, _addr_bnd = {_lower = 0x0, _upper = 0x0}}, _sigpoll = {si_band = 0, si_fd = 0}}}`;

describe("parseSiginfo", () => {
  it("reads signo, errno, code and the fault address", () => {
    expect(parseSiginfo(SEGV)).toEqual({ signo: 11, errno: 0, code: 1, addr: "0x0" });
  });
  it("reads negative codes and a cast address", () => {
    expect(parseSiginfo("$2 = {si_signo = 6, si_errno = 0, si_code = -6, _sigfault = {si_addr = (void *) 0x3e800001f40}}")).toEqual({
      signo: 6,
      errno: 0,
      code: -6,
      addr: "0x3e800001f40",
    });
  });
  it("returns null when gdb could not read it", () => {
    expect(parseSiginfo("Unable to read siginfo")).toBeNull();
    expect(parseSiginfo("$1 = void")).toBeNull();
    expect(parseSiginfo("")).toBeNull();
    expect(parseSiginfo(null)).toBeNull();
  });
});

describe("codeName", () => {
  it("names per-signal and generic codes", () => {
    expect(codeName("SIGSEGV", 1)).toBe("SEGV_MAPERR");
    expect(codeName("SIGSEGV", 2)).toBe("SEGV_ACCERR");
    expect(codeName("SIGBUS", 1)).toBe("BUS_ADRALN");
    expect(codeName("SIGBUS", 2)).toBe("BUS_ADRERR");
    expect(codeName("SIGBUS", 3)).toBe("BUS_OBJERR");
    expect(codeName("SIGFPE", 1)).toBe("FPE_INTDIV");
    expect(codeName("SIGILL", 2)).toBe("ILL_ILLOPN");
    expect(codeName("SIGABRT", -6)).toBe("SI_TKILL");
    expect(codeName("SIGSEGV", 0)).toBe("SI_USER");
    expect(codeName("SIGSEGV", 128)).toBe("SI_KERNEL");
    expect(codeName("SIGTERM", -1)).toBe("SI_QUEUE");
    expect(codeName("SIGUSR1", 77)).toBe("77");
  });
});

describe("signalOf", () => {
  it("describes a null pointer dereference", () => {
    const s = signalOf({ siginfo: parseSiginfo(SEGV), terminatedBy: { name: "SIGSEGV", description: "Segmentation fault" } });
    expect(s).toEqual({
      name: "SIGSEGV",
      number: 11,
      code: "SEGV_MAPERR",
      fault_address: "0x0",
      description: "Segmentation fault: address 0x0 is not mapped (null pointer dereference)",
    });
  });
  it("distinguishes near-null, wild and permission faults", () => {
    const near = signalOf({ siginfo: { signo: 11, code: 1, addr: "0x18", errno: 0 } });
    expect(near?.description).toMatch(/0x18 is not mapped \(null pointer dereference at an offset\)/);
    const wild = signalOf({ siginfo: { signo: 11, code: 1, addr: "0x7ffd12345678", errno: 0 } });
    expect(wild?.description).toMatch(/wild or dangling pointer/);
    const acc = signalOf({ siginfo: { signo: 11, code: 2, addr: "0x555555556004", errno: 0 } });
    expect(acc?.code).toBe("SEGV_ACCERR");
    expect(acc?.description).toMatch(/invalid permissions for mapped address 0x555555556004/);
  });
  it("describes abort and keeps no fault address for it", () => {
    const s = signalOf({ siginfo: { signo: 6, code: -6, addr: "0x3e800001f40", errno: 0 }, terminatedBy: { name: "SIGABRT", description: "Aborted" } });
    expect(s?.code).toBe("SI_TKILL");
    expect(s?.fault_address).toBeNull();
    expect(s?.description).toMatch(/^Aborted: the process called abort\(\)/);
  });
  it("says when a fault signal was sent by kill()", () => {
    const s = signalOf({ siginfo: { signo: 11, code: 0, addr: "0x3e8", errno: 0 } });
    expect(s?.code).toBe("SI_USER");
    expect(s?.fault_address).toBeNull();
    expect(s?.description).toMatch(/sent by another process with kill\(\)/);
  });
  it("describes SIGFPE, SIGBUS and SIGILL", () => {
    expect(signalOf({ siginfo: { signo: 8, code: 1, addr: "0x401136", errno: 0 } })?.description).toMatch(/integer division by zero/);
    expect(signalOf({ siginfo: { signo: 7, code: 2, addr: "0x7f0000001000", errno: 0 } })?.description).toMatch(/no backing storage/);
    const ill = signalOf({ siginfo: { signo: 4, code: 2, addr: "0x401136", errno: 0 } });
    expect(ill).toMatchObject({ name: "SIGILL", code: "ILL_ILLOPN", fault_address: "0x401136" });
  });
  it("falls back to the terminated-by line alone", () => {
    expect(signalOf({ terminatedBy: { name: "SIGSEGV", description: "Segmentation fault" } })).toEqual({
      name: "SIGSEGV",
      number: 11,
      code: null,
      fault_address: null,
      description: "Segmentation fault: invalid memory access",
    });
  });
  it("returns null with nothing known", () => {
    expect(signalOf({})).toBeNull();
  });
});
