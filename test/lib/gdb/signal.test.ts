import { describe, expect, it } from "@jest/globals";
import { codeName, parseSiginfo, signalOf, type Siginfo } from "../../../lib/gdb/signal.js";
import type { Frame } from "../../../lib/result.js";

// What gdb 13 prints for `print $_siginfo` on a null-pointer write.
const SEGV = `$1 = {si_signo = 11, si_errno = 0, si_code = 1, __pad0 = 0, _sifields = {_pad = {0 <repeats 28 times>}, _kill = {si_pid = 0, si_uid = 0}, _timer = {si_tid = 0, si_overrun = 0, si_sigval = {sival_int = 0, sival_ptr = 0x0}}, _rt = {si_pid = 0, si_uid = 0, si_sigval = {sival_int = 0, sival_ptr = 0x0}}, _sigchld = {si_pid = 0, si_uid = 0, si_status = 0, si_utime = 0, si_stime = 0}, _sigfault = {si_addr = 0x0, _addr_lsb = 0, _addr_bnd = {_lower = 0x0, _upper = 0x0}}, _sigpoll = {si_band = 0, si_fd = 0}}}`;

describe("parseSiginfo", () => {
  it("reads signo, errno, code and the fault address", () => {
    expect(parseSiginfo(SEGV)).toEqual({ signo: 11, errno: 0, code: 1, addr: "0x0", pid: 0, uid: 0 });
  });
  it("reads negative codes and a cast address", () => {
    expect(parseSiginfo("$2 = {si_signo = 6, si_errno = 0, si_code = -6, _sigfault = {si_addr = (void *) 0x3e800001f40}}")).toEqual({
      signo: 6,
      errno: 0,
      code: -6,
      addr: "0x3e800001f40",
      pid: null,
      uid: null,
    });
  });
  it("returns null when gdb could not read it", () => {
    expect(parseSiginfo("Unable to read siginfo")).toBeNull();
    expect(parseSiginfo("$1 = void")).toBeNull();
    expect(parseSiginfo("")).toBeNull();
    expect(parseSiginfo(null)).toBeNull();
  });
  it("reads the sender's pid and uid from _kill", () => {
    const t =
      "$1 = {si_signo = 6, si_errno = 0, si_code = -6, _sifields = {_pad = {12744, 0 <repeats 27 times>}, _kill = {si_pid = 12744, si_uid = 1000}, _timer = {si_tid = 12744}}}";
    expect(parseSiginfo(t)).toMatchObject({ code: -6, pid: 12744, uid: 1000 });
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
      sender: { kind: "kernel", pid: null, uid: null },
    });
  });
  it("distinguishes near-null, wild and permission faults", () => {
    const near = signalOf({ siginfo: si(11, 1, "0x18") });
    expect(near?.description).toMatch(/0x18 is not mapped \(null pointer dereference at an offset\)/);
    const wild = signalOf({ siginfo: si(11, 1, "0x7ffd12345678") });
    expect(wild?.description).toMatch(/wild or dangling pointer/);
    const acc = signalOf({ siginfo: si(11, 2, "0x555555556004") });
    expect(acc?.code).toBe("SEGV_ACCERR");
    expect(acc?.description).toMatch(/invalid permissions for mapped address 0x555555556004/);
  });
  it("describes abort and keeps no fault address for it", () => {
    const s = signalOf({ siginfo: si(6, -6, "0x3e800001f40"), terminatedBy: { name: "SIGABRT", description: "Aborted" } });
    expect(s?.code).toBe("SI_TKILL");
    expect(s?.fault_address).toBeNull();
    expect(s?.description).toMatch(/^Aborted: the process called abort\(\)/);
  });
  it("says when a fault signal was sent by kill()", () => {
    const s = signalOf({ siginfo: si(11, 0, "0x3e8") });
    expect(s?.code).toBe("SI_USER");
    expect(s?.fault_address).toBeNull();
    expect(s?.description).toBe("Segmentation fault signal sent with kill() by another process, not raised by a hardware fault");
  });
  it("describes SIGFPE, SIGBUS and SIGILL", () => {
    expect(signalOf({ siginfo: si(8, 1, "0x401136") })?.description).toMatch(/integer division by zero/);
    expect(signalOf({ siginfo: si(7, 2, "0x7f0000001000") })?.description).toMatch(/no backing storage/);
    const ill = signalOf({ siginfo: si(4, 2, "0x401136") });
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
  describe("who sent it, from si_pid against the core's own pid", () => {
    const frames = (names: Array<string | null>): Frame[] =>
      names.map((fn, i) => ({ index: i, function: fn, address: null, args: null, file: null, line: null, library: null, inline: false, signal_handler: fn === null }));
    it("a fault signal the process sent itself with kill(getpid())", () => {
      const s = signalOf({ siginfo: si(11, 0, "0x0", 4242, 1000), processPid: 4242 });
      expect(s?.sender).toEqual({ kind: "self", pid: 4242, uid: 1000 });
      expect(s?.description).toBe("Segmentation fault signal sent with kill() by the process itself, not raised by a hardware fault");
    });
    it("SIGABRT from another process is not abort()", () => {
      const s = signalOf({ siginfo: si(6, 0, "0x0", 777, 0), terminatedBy: { name: "SIGABRT", description: "Aborted" }, processPid: 4242 });
      expect(s?.sender).toEqual({ kind: "process", pid: 777, uid: 0 });
      expect(s?.description).toMatch(/^Aborted: SIGABRT sent with kill\(\) by another process \(pid 777, uid 0\); the process did not call abort\(\)/);
    });
    it("abort() in the process itself", () => {
      const s = signalOf({ siginfo: si(6, -6, "0x0", 4242, 0), processPid: 4242 });
      expect(s?.sender?.kind).toBe("self");
      expect(s?.description).toMatch(/^Aborted: the process called abort\(\)/);
    });
    it("si_pid 0: sent from outside the pid namespace", () => {
      expect(signalOf({ siginfo: si(15, 0, "0x0", 0, 0), processPid: 4242 })?.description).toMatch(/outside the crashed process's pid namespace/);
    });
    it("a fault re-raised by the process's own handler names the frame below <signal handler called>", () => {
      const s = signalOf({ siginfo: si(11, -6, "0x0", 4242, 0), processPid: 4242, crashFrames: frames(["raise", "crash_handler", null, "store_total", "main"]) });
      expect(s?.reraised).toBe(true);
      expect(s?.description).toBe("Segmentation fault re-raised by the process's own signal handler (a crash handler): the original fault is in store_total");
    });
    it("a handler that re-raised and returned: the signal is delivered at the faulting instruction, frame #0", () => {
      const s = signalOf({ siginfo: si(11, -6, "0x0", 4242, 0), processPid: 4242, crashFrames: frames(["store_total", "main"]) });
      expect(s?.reraised).toBe(true);
      expect(s?.description).toMatch(/the original fault is in store_total$/);
    });
    it("raise(SIGSEGV) or kill(getpid()) in the code is self-sent, not a re-raise", () => {
      expect(signalOf({ siginfo: si(11, -6, "0x0", 4242, 0), processPid: 4242, crashFrames: frames(["raise", "main"]) })?.reraised).toBeUndefined();
      expect(signalOf({ siginfo: si(11, 0, "0x0", 4242, 0), processPid: 4242, crashFrames: frames(["kill", "give_up", "main"]) })?.reraised).toBeUndefined();
    });
    it("a handler frame but a signal from another process is not a re-raise", () => {
      const s = signalOf({ siginfo: si(11, 0, "0x0", 777, 0), processPid: 4242, crashFrames: frames(["raise", "h", null, "f"]) });
      expect(s?.reraised).toBeUndefined();
    });
  });

  it("returns null with nothing known", () => {
    expect(signalOf({})).toBeNull();
  });
});

function si(signo: number, code: number, addr: string, pid: number | null = null, uid: number | null = null): Siginfo {
  return { signo, code, addr, errno: 0, pid, uid };
}
