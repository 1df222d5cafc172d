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
//! 3 "how many timed host calls?" (x0 = N), 4 one timed call, 5 "run the
//! RSI bad-input cases?" (x0 = 1: yes; [`rsi_tests`]), 6 "how many timed
//! attestation tokens?" (x0 = N), 7 "the timed tokens took x1 ticks"
//! (x0 = N).
//!
//! After its first token it extends REM 1 (RSI_MEASUREMENT_EXTEND index 1)
//! with [`REM_EXTEND_DATA`], prints the new REM 1 (`REM1 <hex>`) and a second
//! token on `ATTEST2 ` lines: xtask checks that REM 1 went from zero to
//! H(zero || data).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

pub mod rsi_cases;
pub mod storm;

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

/// What realm-guest extends REM 1 with after its first token (xtask knows
/// it too): 20 bytes, not a whole number of registers.
pub const REM_EXTEND_DATA: &[u8; 20] = b"quadrant: rem extend";

/// The bytes of `data` as RSI_MEASUREMENT_EXTEND's x3..x10 (each register's
/// bytes little-endian in order; the rest zero).
pub fn extend_registers(data: &[u8]) -> [u64; 8] {
    let mut r = [0u64; 8];
    for (i, b) in data.iter().take(64).enumerate() {
        r[i / 8] |= (*b as u64) << (8 * (i % 8));
    }
    r
}

/// Whether the `len` bytes `byte(0..len)` of a token carry `challenge` as
/// its Realm challenge claim: key 10, a 64-byte byte string (CBOR 0x0a 0x58
/// 0x40, then the bytes).
pub fn token_has_challenge(len: usize, byte: impl Fn(usize) -> u8, challenge: &[u8; 64]) -> bool {
    let want = |k: usize| if k < 3 { [0x0a, 0x58, 0x40][k] } else { challenge[k - 3] };
    (0..len.saturating_sub(66)).any(|at| (0..67).all(|k| byte(at + k) == want(k)))
}

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
    /// A page the RSI bad-input cases name (RAM, ours): filled with
    /// [`super::PROBE_FILL`] first, it must read the same after every refused call.
    #[unsafe(link_section = ".data.probe")]
    static PROBE: Page = Page(core::cell::UnsafeCell::new([0; 4096]));

    /// IPAs of our pages: (PROBE, RsiHostCall buffer).
    pub fn probe_ipas() -> (u64, u64) {
        (PROBE.0.get() as u64, HOST_CALL.0.get() as u64)
    }

    /// Fills PROBE with [`super::PROBE_FILL`].
    pub fn fill_probe() {
        for i in 0..4096 {
            // SAFETY: our own page; only its address is handed to the RMM.
            unsafe { core::ptr::write_volatile((PROBE.0.get() as *mut u8).add(i), super::PROBE_FILL) };
        }
    }

    /// Whether PROBE still holds [`super::PROBE_FILL`] only.
    pub fn probe_intact() -> bool {
        // SAFETY: our own page, read after the calls that must not write it.
        (0..4096).all(|i| unsafe { core::ptr::read_volatile((PROBE.0.get() as *const u8).add(i)) } == super::PROBE_FILL)
    }

    /// Two granules RSI_ATTESTATION_TOKEN_CONTINUE writes the token into.
    #[repr(C, align(4096))]
    struct TokenBuf(core::cell::UnsafeCell<[u8; TOKEN_BUF]>);
    const TOKEN_BUF: usize = 0x2000;
    // SAFETY: one CPU; the RMM writes it during a call, we read it after with volatile reads.
    unsafe impl Sync for TokenBuf {}
    #[unsafe(link_section = ".data.attest")]
    static TOKEN: TokenBuf = TokenBuf(core::cell::UnsafeCell::new([0; TOKEN_BUF]));

    /// Why a token could not be read: (what, status, x1).
    pub struct TokenError(pub &'static str, pub u64, pub u64);

    /// RSI_ATTESTATION_TOKEN_INIT with `challenge`, then
    /// RSI_ATTESTATION_TOKEN_CONTINUE granule by granule into [`TOKEN`]
    /// until RSI_SUCCESS; returns (token length, INIT's size bound).
    pub fn read_token(challenge: &[u8; 64]) -> Result<(u64, u64), TokenError> {
        let ch: [u64; 8] = core::array::from_fn(|i| u64::from_le_bytes(core::array::from_fn(|j| challenge[8 * i + j])));
        let init = smc(rsi::RSI_ATTESTATION_TOKEN_INIT, &ch);
        if init[0] != 0 {
            return Err(TokenError("INIT", init[0], init[1]));
        }
        Ok((continue_token()?, init[1]))
    }

    /// RSI_ATTESTATION_TOKEN_CONTINUE granule by granule into [`TOKEN`]
    /// until RSI_SUCCESS (the token started by an earlier INIT); its length.
    pub fn continue_token() -> Result<u64, TokenError> {
        let base = token_base();
        let mut len = 0u64;
        loop {
            if len >= TOKEN_BUF as u64 {
                return Err(TokenError("token longer than the buffer", TOKEN_BUF as u64, len));
            }
            let (addr, offset) = (base + (len & !0xfff), len & 0xfff);
            let r = smc(rsi::RSI_ATTESTATION_TOKEN_CONTINUE, &[addr, offset, 0x1000 - offset]);
            if (r[0] != 0 && r[0] != rsi::RsiStatus::Incomplete as u64) || r[1] > 0x1000 - offset {
                return Err(TokenError("CONTINUE", r[0], r[1]));
            }
            len += r[1];
            if r[0] == 0 {
                return Ok(len);
            }
        }
    }

    /// The IPA of the token buffer (two granules).
    pub fn token_base() -> u64 {
        TOKEN.0.get() as u64
    }

    /// Byte `i` of the token buffer.
    pub fn token_byte(i: usize) -> u8 {
        if i >= TOKEN_BUF {
            return 0;
        }
        // SAFETY: inside our own token buffer; the RMM wrote it during a call.
        unsafe { core::ptr::read_volatile((token_base() as usize + i) as *const u8) }
    }

    /// Reads the attestation token and prints it: `<tag> size N bound B`,
    /// base64 lines `<tag> <76 characters at most>`, `<tag> end`.
    fn attest(out: &mut Uart, tag: &str) {
        let (len, bound) = match read_token(&super::ATTEST_CHALLENGE) {
            Ok(r) => r,
            Err(TokenError(what, st, x1)) => {
                let _ = writeln!(out, "{tag} {what} status {st} x1 {x1:#x}");
                return;
            }
        };
        let _ = writeln!(out, "{tag} size {len} bound {bound}");
        let mut at = 0;
        while at < len as usize {
            let n = (len as usize - at).min(57);
            let mut chunk = [0u8; 57];
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = token_byte(at + i);
            }
            let mut line = [0u8; 76];
            let k = super::base64(&chunk[..n], &mut line);
            let _ = writeln!(out, "{tag} {}", core::str::from_utf8(&line[..k]).unwrap_or("?"));
            at += n;
        }
        let _ = writeln!(out, "{tag} end");
    }

    /// Extends REM 1 with [`super::REM_EXTEND_DATA`] and prints the result
    /// (`REM_EXTEND ...`, `REM1 <hex>`), for the second token.
    fn extend_rem1(out: &mut Uart, digest: usize) {
        let d = super::REM_EXTEND_DATA;
        let r = super::extend_registers(d);
        let mut args = [0u64; 10];
        args[0] = 1;
        args[1] = d.len() as u64;
        args[2..].copy_from_slice(&r);
        let e = smc(rsi::RSI_MEASUREMENT_EXTEND, &args);
        let m = smc(rsi::RSI_MEASUREMENT_READ, &[1]);
        let _ = writeln!(out, "REM_EXTEND index 1 size {} status {}; MEASUREMENT_READ status {}", d.len(), e[0], m[0]);
        let mut hex = [0u8; 128];
        for i in 0..digest {
            let byte = (m[1 + i / 8] >> (8 * (i % 8))) as u8;
            hex[2 * i] = super::hex_digit(byte >> 4);
            hex[2 * i + 1] = super::hex_digit(byte);
        }
        let _ = writeln!(out, "REM1 {}", core::str::from_utf8(&hex[..2 * digest]).unwrap_or("?"));
    }

    /// `rounds` whole tokens (INIT + CONTINUE to completion), timed with
    /// CNTVCT; returns the ticks, or 0 if a token failed.
    fn time_tokens(rounds: u64) -> u64 {
        let start = cntvct();
        for _ in 0..rounds {
            if read_token(&super::ATTEST_CHALLENGE).is_err() {
                return 0;
            }
        }
        cntvct().wrapping_sub(start)
    }

    fn cntvct() -> u64 {
        let v: u64;
        // SAFETY: reads the virtual counter (not trapped at R-EL1); the isb
        // keeps it from being read early.
        unsafe { core::arch::asm!("isb", "mrs {v}, cntvct_el0", v = out(reg) v, options(nomem, nostack)) };
        v
    }

    pub fn smc(fid: u32, args: &[u64]) -> [u64; 18] {
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
        // Before anything else starts a token: TOKEN_CONTINUE without INIT is one case.
        if host_call(5, 0) == 1 {
            crate::rsi_tests::run(&mut out, ipa_width);
        }
        // `hostile_realm_storm`: the storm, its checks, and nothing else.
        let storm_calls = host_call(8, 0);
        if storm_calls != 0 {
            storm(&mut out, ipa_width, storm_calls, host_call(9, 0));
            off();
        }

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

        attest(&mut out, "ATTEST");
        extend_rem1(&mut out, len);
        attest(&mut out, "ATTEST2");

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
        let tokens = host_call(6, 0);
        if tokens != 0 {
            let ticks = time_tokens(tokens);
            host_call2(7, tokens, ticks);
            let _ = writeln!(out, "bench {tokens} timed attestation tokens: {ticks} ticks");
        }
        let _ = writeln!(out, "done");
        off()
    }

    /// RSI_HOST_CALL with immediate `imm` and x0; returns the Host's x0.
    pub fn host_call(imm: u64, x0: u64) -> u64 {
        host_call2(imm, x0, 0)
    }

    /// RSI_HOST_CALL with immediate `imm`, x0 and x1; returns the Host's x0.
    pub fn host_call2(imm: u64, x0: u64, x1: u64) -> u64 {
        let hc = HOST_CALL.0.get();
        // SAFETY: our own buffer; the RMM reads and writes it during the call.
        unsafe {
            core::ptr::write_volatile(&raw mut (*hc)[0], imm);
            core::ptr::write_volatile(&raw mut (*hc)[1], x0);
            core::ptr::write_volatile(&raw mut (*hc)[2], x1);
        }
        let h = smc(rsi::RSI_HOST_CALL, &[hc as u64]);
        if h[0] != 0 {
            return 0;
        }
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile(&raw const (*hc)[1]) }
    }

    /// `hostile_realm_storm` (see [`crate::storm`]): `calls` seeded random
    /// SMCs, then the checks; lines `rsi_storm ...`, `rsi_storm_check <name>:
    /// ok|FAIL ...`, `rsi_storm: N passed, M failed`.
    fn storm(out: &mut Uart, ipa_width: u64, calls: u64, seed: u64) {
        use crate::storm::{Layout, confine, plausible, targets};
        use shared::storm::{CallMix, Storm};
        let token = token_base();
        let safe = [&raw const SCRATCH as u64, PROBE.0.get() as u64, token, token + 0x1000];
        // Every protected IPA is ours to keep: only the safe pages are written.
        let layout = Layout { ram: (0, 1 << (ipa_width - 1)), safe: &safe };
        let mut pool = [0u64; 8];
        let n = targets(&safe, ipa_width, &mut pool);
        let rim = |r: [u64; 18]| -> [u64; 8] { core::array::from_fn(|k| r[1 + k]) };
        let rim_before = rim(smc(rsi::RSI_MEASUREMENT_READ, &[0]));
        let _ = writeln!(out, "rsi_storm: seed {seed:#x}, {calls} calls");
        let mix = CallMix { valid_ids: shared::storm::RSI_IDS, id_range: shared::storm::RSI_RANGE, addresses: &pool[..n], forbidden: &crate::storm::forbidden };
        let mut s = Storm::new(seed, mix);
        let (mut ok, mut errors, mut unknown, mut odd) = (0u64, 0u64, 0u64, 0u64);
        for _ in 0..calls {
            let mut c = s.next_call();
            confine(&mut c, &layout, |k| s.below(k));
            let r = smc(c[0] as u32, &c[1..]);
            match r[0] {
                0 => ok += 1,
                x if plausible(x) && x as u32 != u32::MAX => errors += 1,
                x if x as u32 == u32::MAX => unknown += 1,
                _ => odd += 1,
            }
        }
        let _ = writeln!(out, "rsi_storm: {calls} calls: {ok} RSI_SUCCESS, {errors} RSI errors, {unknown} NOT_SUPPORTED, {odd} other");
        let (mut passed, mut failed) = (0, 0);
        let mut line = |out: &mut Uart, name: &str, good: bool, what: fmt::Arguments| {
            if good { passed += 1 } else { failed += 1 }
            let _ = writeln!(out, "rsi_storm_check {name}: {} {what}", if good { "ok" } else { "FAIL" });
        };
        line(out, "answers_plausible", odd == 0, format_args!("{odd} answers neither an RSI status nor NOT_SUPPORTED"));
        let v = smc(rsi::RSI_VERSION, &[rsi::RSI_ABI_VERSION]);
        line(out, "rsi_version", v[0] == 0 && v[1] == rsi::RSI_ABI_VERSION, format_args!("x0 {:#x} lower {:#x}", v[0], v[1]));
        let after = rim(smc(rsi::RSI_MEASUREMENT_READ, &[0]));
        line(out, "rim_unchanged", after == rim_before, format_args!("RIM read back"));
        let cfg_ipa = &raw const CONFIG as u64;
        let c = smc(rsi::RSI_REALM_CONFIG, &[cfg_ipa]);
        // SAFETY: the RMM wrote the page; reads of our own memory.
        let width = unsafe { core::ptr::read_volatile(cfg_ipa as *const u64) };
        line(out, "realm_config", c[0] == 0 && width == ipa_width, format_args!("x0 {:#x} ipa_width {width}", c[0]));
        let echo = host_call(1, 0x1234);
        line(out, "host_call", echo == 0x1235, format_args!("echo {echo:#x}"));
        let _ = writeln!(out, "rsi_storm: {passed} passed, {failed} failed");
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

/// What the RSI bad-input cases fill their probe page with.
pub const PROBE_FILL: u8 = 0xa5;

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

/// Runs the RSI bad-input cases ([`rsi_cases`]) and the ones that need a
/// sequence; one line per case, `rsi_bad_input <name>: ok|FAIL ...`, then
/// `rsi_bad_input: N passed, M failed`.  Runs before the Realm's first
/// RSI_ATTESTATION_TOKEN_INIT.
#[cfg(target_os = "none")]
mod rsi_tests {
    use super::realm::{self, Uart, smc};
    use super::rsi_cases::{self as rc, NOT_SUPPORTED, STATE, SUCCESS, status_name};
    use core::fmt::Write;
    use shared::abi::rsi;

    struct Tally<'a> {
        out: &'a mut Uart,
        passed: u32,
        failed: u32,
    }

    impl Tally<'_> {
        fn line(&mut self, name: &str, ok: bool, what: core::fmt::Arguments) {
            if ok {
                self.passed += 1;
            } else {
                self.failed += 1;
            }
            let _ = writeln!(self.out, "rsi_bad_input {name}: {} {what}", if ok { "ok" } else { "FAIL" });
        }

        /// A call whose x0 must be `want`.
        fn status(&mut self, name: &str, got: u64, want: u64) {
            self.line(name, got == want, format_args!("x0 {got:#x} expected {}", status_name(want)));
        }
    }

    /// REMs 1..=4 as RSI_MEASUREMENT_READ returns them.
    fn rems() -> [[u64; 8]; 4] {
        core::array::from_fn(|i| {
            let r = smc(rsi::RSI_MEASUREMENT_READ, &[i as u64 + 1]);
            core::array::from_fn(|k| r[1 + k])
        })
    }

    fn token_untouched() -> bool {
        (0..0x2000).all(|i| realm::token_byte(i) == 0)
    }

    pub fn run(out: &mut Uart, ipa_width: u64) {
        let mut t = Tally { out, passed: 0, failed: 0 };
        let (probe, host_call) = realm::probe_ipas();
        let l = rc::Layout { ipa_width, probe, host_call, token: realm::token_base() };
        realm::fill_probe();

        // No token started yet on this REC.
        let r = smc(rsi::RSI_ATTESTATION_TOKEN_CONTINUE, &[l.token, 0, 0x1000]);
        t.status("token_continue_without_init", r[0], STATE);

        let before = rems();
        let ch: [u64; 8] = core::array::from_fn(|i| i as u64);
        let r = smc(rsi::RSI_ATTESTATION_TOKEN_INIT, &ch);
        t.line("token_init", r[0] == SUCCESS && r[1] != 0, format_args!("x0 {:#x} bound {} expected SUCCESS, a bound", r[0], r[1]));

        for c in rc::cases(&l) {
            let r = smc(c.fid, &c.args);
            match c.fid {
                // Refused: lower = higher = the version we implement.
                rsi::RSI_VERSION => t.line(
                    c.name,
                    r[0] == c.expect && r[1] == rsi::RSI_ABI_VERSION && r[2] == rsi::RSI_ABI_VERSION,
                    format_args!("x0 {:#x} lower {:#x} higher {:#x} expected {} 0x10000 0x10000", r[0], r[1], r[2], status_name(c.expect)),
                ),
                _ => t.status(c.name, r[0], c.expect),
            }
        }

        // What the refused calls must not have changed.
        t.line("measurement_extend_failures_changed_no_rem", rems() == before, format_args!("REMs 1..4 read the same"));
        t.line("refused_calls_wrote_nothing", realm::probe_intact() && token_untouched(), format_args!("probe page and token buffer unchanged"));

        // The token started above survived every refused CONTINUE.
        match realm::continue_token() {
            Ok(len) => t.line("token_continue_after_errors_completes", len > 0, format_args!("{len} bytes, expected SUCCESS")),
            Err(realm::TokenError(what, st, x1)) => t.line("token_continue_after_errors_completes", false, format_args!("{what} x0 {st:#x} x1 {x1:#x}")),
        }
        let r = smc(rsi::RSI_ATTESTATION_TOKEN_CONTINUE, &[l.token, 0, 0x1000]);
        t.status("token_continue_after_completion", r[0], STATE);

        // RSI 1.0 has no challenge size: x1..x8 always carry 64 bytes, a
        // shorter challenge (here 32 bytes) is zero-padded by the Realm and
        // the token carries the 64 bytes as given.
        let mut short = [0u8; 64];
        for (i, b) in short[..32].iter_mut().enumerate() {
            *b = 0xc0 + i as u8;
        }
        match realm::read_token(&short) {
            Ok((len, _)) => {
                let found = super::token_has_challenge(len as usize, realm::token_byte, &short);
                t.line("token_init_32_byte_challenge", found, format_args!("{len} bytes, challenge claim = the 32 bytes zero-padded to 64: {found}"));
            }
            Err(realm::TokenError(what, st, x1)) => t.line("token_init_32_byte_challenge", false, format_args!("{what} x0 {st:#x} x1 {x1:#x}")),
        }

        // RSI_FEATURES has no failure condition: an index we do not know reads as 0.
        let r = smc(rsi::RSI_FEATURES, &[1]);
        t.line("features_index_1", r[0] == SUCCESS && r[1] == 0, format_args!("x0 {:#x} x1 {:#x} expected SUCCESS 0", r[0], r[1]));
        // An HVC is not how a Realm calls the RMM.
        let r = shared::smccc::hvc(rsi::RSI_VERSION, &[rsi::RSI_ABI_VERSION]);
        t.status("hvc_rsi_version", r[0], NOT_SUPPORTED);

        let (passed, failed) = (t.passed, t.failed);
        let _ = writeln!(t.out, "rsi_bad_input: {passed} passed, {failed} failed");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn challenge_claim_search() {
        let mut ch = [0u8; 64];
        ch[0] = 7;
        let mut token = vec![0xd9, 0x01, 0x8f, 0x0a, 0x58, 0x40];
        token.extend_from_slice(&ch);
        assert!(super::token_has_challenge(token.len(), |i| token[i], &ch));
        ch[63] = 1;
        assert!(!super::token_has_challenge(token.len(), |i| token[i], &ch));
        assert!(!super::token_has_challenge(0, |_| 0, &ch));
    }

    #[test]
    fn extend_registers_little_endian() {
        let r = super::extend_registers(super::REM_EXTEND_DATA);
        assert_eq!(r[0].to_le_bytes(), *b"quadrant");
        assert_eq!(r[2], u64::from_le_bytes(*b"tend\0\0\0\0"));
        assert_eq!(r[3..], [0; 5]);
    }

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
