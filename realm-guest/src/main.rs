//! realm-guest: a tiny Realm payload for R-EL1 (DEN0137 RMM 1.0, RSI,
//! chapter B5).  It asks the RMM for its RSI version and configuration,
//! prints its RIM, changes the RIPAS of one of its pages, makes a host call,
//! reads its attestation token (RSI_ATTESTATION_TOKEN_INIT with the challenge
//! [`ATTEST_CHALLENGE`], then RSI_ATTESTATION_TOKEN_CONTINUE into two
//! granules of its own) and prints it in base64 on `ATTEST ` lines, and
//! powers off through PSCI.  It prints through a PL011 data register the
//! Host emulates at the unprotected alias of QEMU's UART0:
//! `(1 << (ipa_width - 1)) | 0x0900_0000`.
//!
//! Load contract (for the Host): the flat binary is loaded at IPA
//! 0x4000_0000 (all of it measured, it holds its own stack), entered at its
//! first byte in EL1h with the MMU off.  The Host prints each line it
//! receives with a `[realm] ` prefix.
//!
//! Host calls (RSI_HOST_CALL immediates, a protocol with ns-hyp): 1 echo
//! (x0 in, x0 + 1 back), 2 "run the isolation probes?" (x0 = 1: yes),
//! 3 "how many timed host calls?" (x0 = N), 4 one timed call.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

/// Where the image is linked and must be loaded (build.rs).
pub const LOAD_IPA: u64 = 0x4000_0000;
/// QEMU virt UART0, reached through the unprotected IPA alias.
pub const UART_OFFSET: u64 = 0x0900_0000;

/// The attestation challenge: byte i is i (x1..x8 little-endian), so
/// xtask knows it.
pub const ATTEST_CHALLENGE: [u8; 64] = {
    let mut c = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        c[i] = i as u8;
        i += 1;
    }
    c
};

/// Base64 (RFC 4648, with padding) of `src` into `dst` (at least
/// `4 * src.len().div_ceil(3)` bytes); returns the length written.
pub fn base64(src: &[u8], dst: &mut [u8]) -> usize {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut n = 0;
    for c in src.chunks(3) {
        let v = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            dst[n + k] = if k <= c.len() { A[(v >> (18 - 6 * k)) as usize & 63] } else { b'=' };
        }
        n += 4;
    }
    n
}

/// Hex digits of a measurement, for the RIM line.
pub fn hex_digit(n: u8) -> u8 {
    b"0123456789abcdef"[(n & 0xf) as usize]
}

#[cfg(target_os = "none")]
mod realm {
    use core::fmt::{self, Write};
    use shared::abi::{psci, rsi};

    core::arch::global_asm!(
        ".section .text.entry, \"ax\"",
        ".global _start",
        "_start:",
        "adrp x9, {stack}",
        "add x9, x9, :lo12:{stack}",
        "add sp, x9, #{size}",
        // FP/SIMD on at EL1 (CPACR_EL1.FPEN): Rust code may use it.
        "mov x9, #(3 << 20)",
        "msr cpacr_el1, x9",
        // Our vectors: the isolation probes expect an injected abort.
        "adrp x9, realm_vectors",
        "add x9, x9, :lo12:realm_vectors",
        "msr vbar_el1, x9",
        "isb",
        "bl realm_main",
        "1: wfi",
        "b 1b",
        stack = sym STACK,
        size = const STACK_SIZE,
    );

    const STACK_SIZE: usize = 0x4000;
    shared::payload_stack!(STACK, STACK_SIZE);

    /// A page the RMM writes (RSI_REALM_CONFIG) or whose RIPAS we change; only
    /// its address is handed out, Rust never references its contents.
    #[repr(C, align(4096))]
    struct Page(core::cell::UnsafeCell<[u8; 4096]>);
    // SAFETY: one CPU; the contents are touched only by the RMM during a call.
    unsafe impl Sync for Page {}
    #[unsafe(link_section = ".data.config")]
    static CONFIG: Page = Page(core::cell::UnsafeCell::new([0; 4096]));
    /// A page whose RIPAS we ask to change.
    #[unsafe(link_section = ".data.scratch")]
    static SCRATCH: Page = Page(core::cell::UnsafeCell::new([0; 4096]));
    /// RsiHostCall buffer (0x100 bytes, 256-aligned).
    #[repr(C, align(256))]
    struct HostCall(core::cell::UnsafeCell<[u64; 32]>);
    // SAFETY: one CPU; accessed only through volatile reads/writes around RSI calls.
    unsafe impl Sync for HostCall {}
    #[unsafe(link_section = ".data.hostcall")]
    static HOST_CALL: HostCall = HostCall(core::cell::UnsafeCell::new([0; 32]));
    /// Two granules RSI_ATTESTATION_TOKEN_CONTINUE writes the token into.
    #[repr(C, align(4096))]
    struct TokenBuf(core::cell::UnsafeCell<[u8; TOKEN_BUF]>);
    const TOKEN_BUF: usize = 0x2000;
    // SAFETY: one CPU; the RMM writes it during a call, we read it after with volatile reads.
    unsafe impl Sync for TokenBuf {}
    #[unsafe(link_section = ".data.attest")]
    static TOKEN: TokenBuf = TokenBuf(core::cell::UnsafeCell::new([0; TOKEN_BUF]));

    /// Reads the attestation token and prints it: `ATTEST size N bound B`,
    /// base64 lines `ATTEST <76 characters at most>`, `ATTEST end`.
    fn attest(out: &mut Uart) {
        let ch: [u64; 8] = core::array::from_fn(|i| u64::from_le_bytes(core::array::from_fn(|j| super::ATTEST_CHALLENGE[8 * i + j])));
        let init = smc(rsi::RSI_ATTESTATION_TOKEN_INIT, &ch);
        if init[0] != 0 {
            let _ = writeln!(out, "ATTEST INIT status {}", init[0]);
            return;
        }
        let base = TOKEN.0.get() as u64;
        let mut len = 0u64;
        loop {
            if len >= TOKEN_BUF as u64 {
                let _ = writeln!(out, "ATTEST token longer than {TOKEN_BUF:#x} (bound {:#x})", init[1]);
                return;
            }
            let (addr, offset) = (base + (len & !0xfff), len & 0xfff);
            let r = smc(rsi::RSI_ATTESTATION_TOKEN_CONTINUE, &[addr, offset, 0x1000 - offset]);
            if (r[0] != 0 && r[0] != rsi::RsiStatus::Incomplete as u64) || r[1] > 0x1000 - offset {
                let _ = writeln!(out, "ATTEST CONTINUE status {} len {:#x}", r[0], r[1]);
                return;
            }
            len += r[1];
            if r[0] == 0 {
                break;
            }
        }
        let _ = writeln!(out, "ATTEST size {len} bound {}", init[1]);
        let mut at = 0;
        while at < len as usize {
            let n = (len as usize - at).min(57);
            let mut chunk = [0u8; 57];
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                // SAFETY: inside our own token buffer (at + i < len <= TOKEN_BUF).
                *b = unsafe { core::ptr::read_volatile((base as usize + at + i) as *const u8) };
            }
            let mut line = [0u8; 76];
            let k = super::base64(&chunk[..n], &mut line);
            let _ = writeln!(out, "ATTEST {}", core::str::from_utf8(&line[..k]).unwrap_or("?"));
            at += n;
        }
        let _ = writeln!(out, "ATTEST end");
    }

    fn smc(fid: u32, args: &[u64]) -> [u64; 18] {
        shared::smccc::smc(fid, args)
    }

    pub struct Uart(u64);
    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                // SAFETY: the PL011 data register the Host emulates; each
                // store is one emulatable MMIO exit.
                unsafe { core::ptr::write_volatile(self.0 as *mut u32, b as u32) };
            }
            Ok(())
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn realm_main() -> ! {
        let v = smc(rsi::RSI_VERSION, &[rsi::RSI_ABI_VERSION]);
        let cfg_ipa = &raw const CONFIG as u64;
        let c = smc(rsi::RSI_REALM_CONFIG, &[cfg_ipa]);
        // SAFETY: the RMM wrote the page; reads of our own memory.
        let (ipa_width, algo) = unsafe {
            (core::ptr::read_volatile(cfg_ipa as *const u64), core::ptr::read_volatile((cfg_ipa + 8) as *const u64))
        };
        // Without a configuration there is no way to reach the UART: stop.
        if c[0] != 0 || !(32..=48).contains(&ipa_width) {
            off();
        }
        let mut out = Uart((1 << (ipa_width - 1)) | super::UART_OFFSET);
        let _ = writeln!(out, "RSI_VERSION status {} lower {:#x} higher {:#x}", v[0], v[1], v[2]);
        let _ = writeln!(out, "REALM_CONFIG ipa_width {ipa_width} hash_algo {algo}");

        let m = smc(rsi::RSI_MEASUREMENT_READ, &[0]);
        let len = if algo == rsi::RSI_HASH_SHA_512 as u64 { 64 } else { 32 };
        let mut hex = [0u8; 128];
        for i in 0..len {
            let byte = (m[1 + i / 8] >> (8 * (i % 8))) as u8;
            hex[2 * i] = super::hex_digit(byte >> 4);
            hex[2 * i + 1] = super::hex_digit(byte);
        }
        let _ = writeln!(out, "RIM {}", core::str::from_utf8(&hex[..2 * len]).unwrap_or("?"));

        let base = &raw const SCRATCH as u64;
        let s = smc(rsi::RSI_IPA_STATE_SET, &[base, base + 0x1000, rsi::RSI_RAM, 0]);
        let g = smc(rsi::RSI_IPA_STATE_GET, &[base, base + 0x1000]);
        let _ = writeln!(out, "IPA_STATE_SET {base:#x} RAM: status {} next {:#x} response {}; IPA_STATE_GET ripas {}", s[0], s[1], s[2], g[2]);

        let hc = HOST_CALL.0.get();
        // SAFETY: our own buffer; the RMM reads and writes it during the call.
        unsafe {
            core::ptr::write_volatile(&raw mut (*hc)[0], 1);
            core::ptr::write_volatile(&raw mut (*hc)[1], 0x1234);
        }
        let h = smc(rsi::RSI_HOST_CALL, &[hc as u64]);
        // SAFETY: as above.
        let x0 = unsafe { core::ptr::read_volatile(&raw const (*hc)[1]) };
        let _ = writeln!(out, "HOST_CALL imm 1 status {} x0 {x0:#x}", h[0]);

        attest(&mut out);

        if host_call(2, 0) == 1 {
            crate::isolation::probes(&mut out, ipa_width);
        }
        let rounds = host_call(3, 0);
        for _ in 0..rounds {
            host_call(4, 0);
        }
        if rounds != 0 {
            let _ = writeln!(out, "bench {rounds} timed host calls");
        }
        let _ = writeln!(out, "done");
        off()
    }

    /// RSI_HOST_CALL with immediate `imm` and x0; returns the Host's x0.
    pub fn host_call(imm: u64, x0: u64) -> u64 {
        let hc = HOST_CALL.0.get();
        // SAFETY: our own buffer; the RMM reads and writes it during the call.
        unsafe {
            core::ptr::write_volatile(&raw mut (*hc)[0], imm);
            core::ptr::write_volatile(&raw mut (*hc)[1], x0);
        }
        let h = smc(rsi::RSI_HOST_CALL, &[hc as u64]);
        if h[0] != 0 {
            return 0;
        }
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(&raw const (*hc)[1]) }
    }

    fn off() -> ! {
        smc(psci::PSCI_SYSTEM_OFF, &[]);
        loop {
            // SAFETY: waiting for nothing; the Realm is off.
            unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        off()
    }
}

/// What a probe expects of a load from NS memory it must not reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A Synchronous External Abort injected by the RMM (DEN0137 "Realm data access":
    /// protected IPA, RIPAS EMPTY; or the Host's inject_sea after an
    /// unprotected access): ESR_EL1 EC 0x25, DFSC 0b010000.
    Sea,
    /// An emulated MMIO read the Host answers (unprotected IPA the Host did
    /// not map: UNASSIGNED_NS, a REC exit): the value is the Host's (0), not
    /// the NS memory's.
    HostEmulatedZero,
}

/// Judges a probe: (ok, what happened).
pub fn judge(expect: Expect, esr: u64, value: u64) -> bool {
    match expect {
        Expect::Sea => esr >> 26 == 0x25 && esr & 0x3f == 0b01_0000 && value == PROBE_POISON,
        Expect::HostEmulatedZero => esr == 0 && value == 0,
    }
}

/// What a probe's destination register holds before the load.
pub const PROBE_POISON: u64 = 0xdead_beef;

#[cfg(target_os = "none")]
mod isolation {
    use super::{Expect, PROBE_POISON, judge};
    use core::fmt::Write;

    // Vectors (DDI0487, "Vector tables"): only "current EL with SP_ELx, synchronous"
    // (+0x200) is expected, from a probe's load: it hands ESR/FAR back in
    // x9/x10 and skips the load.  Anything else powers the Realm off.
    core::arch::global_asm!(
        ".section .text.vectors, \"ax\"",
        ".balign 2048",
        ".global realm_vectors",
        "realm_vectors:",
        ".rept 4",
        "b 9f",
        ".balign 128",
        ".endr",
        "mrs x9, esr_el1",
        "mrs x10, far_el1",
        "mrs x11, elr_el1",
        "add x11, x11, #4",
        "msr elr_el1, x11",
        "eret",
        ".balign 128",
        ".rept 10",
        "b 9f",
        ".balign 128",
        ".endr",
        "9:",
        "movz x0, #0x0008",
        "movk x0, #0x8400, lsl #16",
        "smc #0",
        "b 9b",
    );

    /// Loads from `ipa`; returns (ESR_EL1 if it faulted else 0, FAR, value).
    fn probe(ipa: u64) -> (u64, u64, u64) {
        let (esr, far, value): (u64, u64, u64);
        // SAFETY: a load the RMM or the Host must refuse; the vector above
        // skips it if it faults.
        unsafe {
            core::arch::asm!(
                "mov x9, xzr",
                "mov x10, xzr",
                "ldr {v}, [{a}]",
                a = in(reg) ipa,
                v = inout(reg) PROBE_POISON => value,
                out("x9") esr,
                out("x10") far,
                out("x11") _,
                options(nostack),
            );
        }
        (esr, far, value)
    }

    /// Loads the Realm must not be able to turn into NS memory reads.
    pub fn probes(out: &mut super::realm::Uart, ipa_width: u64) {
        let unprot = 1u64 << (ipa_width - 1);
        // 0x60000000 is ns-hyp's own image in NS PA space.
        for (name, ipa, expect) in [
            ("protected_empty", 0x6000_0000u64, Expect::Sea),
            ("unprotected_unmapped", unprot | 0x6000_0000, Expect::HostEmulatedZero),
            // ns-hyp answers reads of this page with RmiRecEnter.flags.inject_sea.
            ("unprotected_host_sea", unprot | 0x6000_1000, Expect::Sea),
        ] {
            let (esr, far, v) = probe(ipa);
            let ok = judge(expect, esr, v);
            let _ = writeln!(
                out,
                "isolation {name} ipa {ipa:#x}: {} expected {expect:?}: esr {esr:#x} far {far:#x} value {v:#x}",
                if ok { "ok" } else { "FAIL" }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_judgement() {
        use super::{Expect, PROBE_POISON, judge};
        assert!(judge(Expect::Sea, 0x9600_0010, PROBE_POISON));
        assert!(!judge(Expect::Sea, 0, 0));
        assert!(!judge(Expect::Sea, 0x9600_0010, 0));
        assert!(judge(Expect::HostEmulatedZero, 0, 0));
        assert!(!judge(Expect::HostEmulatedZero, 0, 0x1400_0010));
    }

    #[test]
    fn hex() {
        assert_eq!(super::hex_digit(0xab >> 4), b'a');
        assert_eq!(super::hex_digit(0x0f), b'f');
    }

    #[test]
    fn base64_rfc4648_vectors() {
        let mut out = [0u8; 8];
        for (src, want) in [(&b""[..], ""), (b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"), (b"foob", "Zm9vYg=="), (b"fooba", "Zm9vYmE="), (b"foobar", "Zm9vYmFy")] {
            let n = super::base64(src, &mut out);
            assert_eq!(&out[..n], want.as_bytes());
        }
        assert_eq!(super::ATTEST_CHALLENGE[63], 63);
    }
}
