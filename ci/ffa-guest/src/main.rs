//! ffa-guest: a bare-metal EL1 guest of ns-hyp that checks the memory
//! isolation of ns-hyp's FF-A proxy from the inside (issue B3, test
//! `guest_ffa_isolation`).
//!
//! Load contract: the flat binary (with an arm64 Image header, booting.rst)
//! sits at guest IPA 0x40200000 and is entered at its first byte in EL1h
//! with the MMU off.  It prints through the PL011 ns-hyp emulates at
//! 0x09000000 and reads bytes from it.
//!
//! As FF-A endpoint 1 (VM 0) it runs the checks below, one line each
//! (`[ffa-guest] <check>: ok` or `... FAIL <detail>`), then
//! `[ffa-guest] N passed, M failed`, and leaves page [`LENT`] lent to the
//! isolation SP.  It then waits for console bytes: `r` asks for PSCI
//! SYSTEM_RESET, `o` for SYSTEM_OFF (DEN0022 §5.10, §5.11).  As any other
//! endpoint it runs no checks of its own (a second VM, so that VM 0's reset
//! is a VM reset and not the machine's).
//!
//! Notifications and indirect messages (test `guest_ffa_notifications`, two
//! ffa-guests, endpoints 1 and 2, each the other's peer), on console bytes:
//! - `n`: FFA_FEATURES (the NPI offered, no SRI), the calls a VM may not
//!   make or may make only for itself, a notification from the mp SP that
//!   arrives as the NPI, a notification and an indirect message to mp, and
//!   the peer bound as sender of notification [`PEER_BIT`];
//! - `s`: notification [`PEER_BIT`] and an indirect message to the peer (a
//!   second message meanwhile: BUSY, the peer owns its RX buffer);
//! - `g`: the peer's notification and message arrive (NPI, FFA_NOTIFICATION_GET,
//!   the RX buffer), and the buffer goes back (FFA_RX_RELEASE).
//! - `i`: mp sends this VM an indirect message (FFA_MSG_SEND2 from an SP: the
//!   SPMC writes it into the RX buffer ns-hyp forwarded to it): the NPI,
//!   FFA_NOTIFICATION_GET shows the SPM framework bit "RX buffer full"
//!   (w6), the message is in RX from mp, a second one meanwhile is BUSY,
//!   FFA_RX_RELEASE (then DENIED), and the next one arrives;
//! - `a` (once the peer is off): mp heard one "VM created" message about
//!   each VM and one "VM destroyed" about the peer (ns-hyp's VM
//!   availability messages), with this life's handle.
//! Each ends with `[ffa-guest] <what>: N passed, M failed`.
//!
//! A synchronous external abort taken at EL1 (the one ns-hyp injects for an
//! access to a page the guest lent) is recorded by this image's own vector
//! and the faulting instruction skipped, so a check can see "the access
//! faulted" and go on.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

/// QEMU virt UART0, emulated by ns-hyp for the guest.
pub const UART_BASE: u64 = 0x0900_0000;
/// The guest's RX and TX buffers (FFA_RXTX_MAP) and the page it lends,
/// 16 MiB into its RAM: above the image, below where ns-hyp puts the DTB
/// (half-way into a 64 MiB VM).
pub const RX: u64 = 0x4100_0000;
pub const TX: u64 = 0x4100_1000;
pub const LENT: u64 = 0x4100_2000;
/// An IPA outside any VM's RAM (RAM is at most 1 GiB from 0x40000000).
pub const OUTSIDE: u64 = 0x8000_0000;
/// The isolation SP (tfa-integration/sp/isolation.dts `id`): the borrower.
pub const ISOLATION_SP: u16 = 0x8003;
/// A handle no transaction of this VM has.
pub const UNKNOWN_HANDLE: u64 = 0xdead_0000_beef;
/// What [`LENT`] holds before it is lent, and must hold when reclaimed.
pub const PATTERN: u64 = 0x5155_4144_4c45_4e54;
/// The mp SP (tfa-integration/sp/mp.dts): notifications and indirect messages.
pub const MP_SP: u16 = 0x8002;
/// mp's commands (sps/mp/src/main.rs): any FF-A call, map its RX/TX, read
/// its indirect message.
pub const MP_CMD_FFA: u64 = 16;
pub const MP_CMD_MAP: u64 = 17;
pub const MP_CMD_READ: u64 = 18;
pub const MP_CMD_SEND: u64 = 19;
pub const MP_CMD_VM_SEEN: u64 = 21;
/// The notifications used: mp to the VM, the VM to mp, peer to peer.
pub const SP_BIT: u64 = 1 << 5;
pub const TO_SP_BIT: u64 = 1 << 7;
pub const PEER_BIT: u64 = 1 << 9;
/// The Notification Pending Interrupt ns-hyp gives VMs (FFA_FEATURES(NPI)).
pub const NPI_INTID: u32 = 8;
/// The vGIC's distributor and vCPU 0's redistributor (SGI frame at +64 KiB).
pub const GICD: u64 = 0x0800_0000;
pub const GICR: u64 = 0x080a_0000;
/// The v1.2 indirect message header's size: our payload's offset.
pub const HEADER: usize = shared::ffa_indirect::HEADER_V1_2;

/// A v1.2 indirect message header for `size` payload bytes right after it.
pub use shared::ffa_indirect::header_v1_2 as message_header;

/// ESR_EL1.EC of a Data Abort taken without a change in EL (Arm ARM, ESR_ELx).
pub const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
/// ESR_EL1.ISS.DFSC of a synchronous external abort, not on a table walk.
pub const DFSC_SYNC_EXTERNAL: u64 = 0x10;

/// Whether `esr` is the synchronous external abort of a data access, a
/// write when `write` (ISS.WnR).
pub fn is_external_abort(esr: u64, write: bool) -> bool {
    (esr >> 26) & 0x3f == EC_DATA_ABORT_SAME_EL && esr & 0x3f == DFSC_SYNC_EXTERNAL && ((esr >> 6) & 1 == 1) == write
}

/// A v1.1+ memory transaction descriptor (DEN0077 v1.2, "Memory transaction
/// descriptor"): the 48-byte header, one 16-byte endpoint memory access
/// descriptor, the composite memory region descriptor and one constituent
/// of `pages` pages at `ipa`; sender `sender`, receiver `receiver` with
/// read/write, not executable.  `attributes`: the memory region attributes
/// (a lender to a single borrower leaves them unspecified: 0).
pub fn descriptor(sender: u16, receiver: u16, attributes: u16, ipa: u64, pages: u32) -> [u8; DESCRIPTOR_LEN] {
    let mut d = [0u8; DESCRIPTOR_LEN];
    d[0..2].copy_from_slice(&sender.to_le_bytes());
    d[2..4].copy_from_slice(&attributes.to_le_bytes());
    // Size of each EMAD, their count, offset of the first.
    d[24..28].copy_from_slice(&16u32.to_le_bytes());
    d[28..32].copy_from_slice(&1u32.to_le_bytes());
    d[32..36].copy_from_slice(&48u32.to_le_bytes());
    // EMAD: receiver, permissions (data read/write 0b10, not executable 0b01 << 2), composite offset.
    d[48..50].copy_from_slice(&receiver.to_le_bytes());
    d[50] = 0b0110;
    d[52..56].copy_from_slice(&64u32.to_le_bytes());
    // Composite: total page count, constituent count.
    d[64..68].copy_from_slice(&pages.to_le_bytes());
    d[68..72].copy_from_slice(&1u32.to_le_bytes());
    // Constituent: address, page count.
    d[80..88].copy_from_slice(&ipa.to_le_bytes());
    d[88..92].copy_from_slice(&pages.to_le_bytes());
    d
}

pub const DESCRIPTOR_LEN: usize = 96;
/// Normal memory, write-back, inner shareable (DEN0077 v1.2, "Memory region attributes").
pub const ATTR_NORMAL_WB_IS: u16 = 0x2f;

#[cfg(test)]
mod tests {
    #[test]
    fn descriptor_parses_as_ns_hyp_and_spmc_read_it() {
        let d = super::descriptor(1, 0x8003, 0, 0x4100_2000, 1);
        let t = shared::ffa_memory::parse(&d, 0x1_0002, true).unwrap();
        assert_eq!(t.sender, 1);
        assert_eq!(t.receivers().map(|r| r.receiver).collect::<Vec<_>>(), [0x8003]);
        let c: Vec<_> = shared::ffa_memory::constituents(&d[80..]).unwrap().collect();
        assert_eq!((c[0].address, c[0].page_count), (0x4100_2000, 1));
    }

    #[test]
    fn external_abort_syndromes() {
        // EC 0x25, IL, WnR, DFSC 0x10: as ns-hyp injects them.
        assert!(super::is_external_abort(0x25 << 26 | 1 << 25 | 0x10, false));
        assert!(super::is_external_abort(0x25 << 26 | 1 << 25 | 1 << 6 | 0x10, true));
        assert!(!super::is_external_abort(0x25 << 26 | 1 << 25 | 0x10, true));
        assert!(!super::is_external_abort(0x24 << 26 | 0x10, false));
        assert!(!super::is_external_abort(0x25 << 26 | 0x07, false));
    }
}

#[cfg(target_os = "none")]
mod guest {
    use core::fmt::{self, Write};
    use core::sync::atomic::{AtomicU64, Ordering};
    use shared::abi::ffa::{FfaError, FuncId, fid};
    use shared::ffa_client::{CallError, FfaClient, REQUESTED_VERSION, error_name};
    use shared::smccc::Hvc;

    use super::{LENT, OUTSIDE, PATTERN, RX, TX};

    /// ESR_EL1 of the last synchronous exception the vector took (0: none).
    static LAST_ESR: AtomicU64 = AtomicU64::new(0);

    core::arch::global_asm!(
        ".section .text.entry, \"ax\"",
        ".global _start",
        "_start:",
        // Flags 0xa: little endian, 4 KiB pages, anywhere in RAM.
        shared::arm64_image_header!("0", "0xa"),
        "adrp x9, {stack}",
        "add x9, x9, :lo12:{stack}",
        "add sp, x9, #{size}",
        // FP/SIMD on at EL1 (CPACR_EL1.FPEN): Rust code may use it.
        "mov x9, #(3 << 20)",
        "msr cpacr_el1, x9",
        "adrp x9, ffa_guest_vectors",
        "add x9, x9, :lo12:ffa_guest_vectors",
        "msr vbar_el1, x9",
        "isb",
        "bl guest_main",
        "2: wfi",
        "b 2b",
        // The vector table (2 KiB aligned, 16 entries of 0x80 bytes).  Only
        // "current EL with SP_ELx, synchronous" (0x200) is expected: it
        // records ESR_EL1 in LAST_ESR and returns past the faulting
        // instruction.  Anything else hangs (the test times out on it).
        ".balign 2048",
        "ffa_guest_vectors:",
        ".rept 4",
        "b .",
        ".balign 128",
        ".endr",
        "sub sp, sp, #16",
        "stp x0, x1, [sp]",
        "mrs x0, esr_el1",
        "adrp x1, {esr}",
        "str x0, [x1, :lo12:{esr}]",
        "mrs x0, elr_el1",
        "add x0, x0, #4",
        "msr elr_el1, x0",
        "ldp x0, x1, [sp]",
        "add sp, sp, #16",
        "eret",
        ".balign 128",
        ".rept 11",
        "b .",
        ".balign 128",
        ".endr",
        stack = sym STACK,
        size = const STACK_SIZE,
        esr = sym LAST_ESR,
    );

    const STACK_SIZE: usize = 0x4000;
    shared::payload_stack!(STACK, STACK_SIZE);

    const UART_DR: u64 = super::UART_BASE;
    const UART_FR: u64 = super::UART_BASE + 0x18;
    const FR_RXFE: u32 = 1 << 4;

    struct Uart;
    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                // SAFETY: the PL011 data register ns-hyp emulates; each store
                // is one MMIO exit (MMU off: Device memory).
                unsafe { core::ptr::write_volatile(UART_DR as *mut u32, b as u32) };
            }
            Ok(())
        }
    }

    fn cntvct() -> u64 {
        let v: u64;
        // SAFETY: reads the virtual counter, always accessible at EL1.
        unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
        v
    }

    /// The next byte typed on the console.  Polled every ~10 ms (the
    /// counter loop between polls does not exit to ns-hyp).
    fn read_byte() -> u8 {
        let hz: u64;
        // SAFETY: reads the counter frequency register.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
        loop {
            // SAFETY: the emulated PL011's flag and data registers.
            unsafe {
                if core::ptr::read_volatile(UART_FR as *const u32) & FR_RXFE == 0 {
                    return core::ptr::read_volatile(UART_DR as *const u32) as u8;
                }
            }
            let t = cntvct();
            while cntvct() - t < hz / 100 {}
        }
    }

    /// Reads the 8 bytes at `ipa`: Ok(value), or Err(ESR_EL1) when the
    /// access took a synchronous exception.
    fn read(ipa: u64) -> Result<u64, u64> {
        LAST_ESR.store(0, Ordering::SeqCst);
        let mut v: u64 = 0;
        // SAFETY: a load from the guest's own RAM (identity, MMU off); if the
        // page is not the guest's now, ns-hyp injects an external abort, which
        // our vector records and skips (v keeps 0).
        unsafe { core::arch::asm!("ldr {v}, [{a}]", a = in(reg) ipa, v = inout(reg) v, options(nostack)) };
        match LAST_ESR.load(Ordering::SeqCst) {
            0 => Ok(v),
            esr => Err(esr),
        }
    }

    /// Writes `v` to the 8 bytes at `ipa`: Ok, or Err(ESR_EL1) as [`read`].
    fn write(ipa: u64, v: u64) -> Result<(), u64> {
        LAST_ESR.store(0, Ordering::SeqCst);
        // SAFETY: as `read`, a store.
        unsafe { core::arch::asm!("str {v}, [{a}]", a = in(reg) ipa, v = in(reg) v, options(nostack)) };
        match LAST_ESR.load(Ordering::SeqCst) {
            0 => Ok(()),
            esr => Err(esr),
        }
    }

    /// Copies `d` into the TX buffer, 8 bytes at a time.
    fn put_tx(d: &[u8; super::DESCRIPTOR_LEN]) {
        for (i, w) in d.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            // SAFETY: our TX page, in our RAM.
            unsafe { core::ptr::write_volatile((TX + 8 * i as u64) as *mut u64, v) };
        }
    }

    /// An FF-A reply as the checks see it.
    #[derive(Clone, Copy)]
    enum Reply {
        /// FFA_SUCCESS; the handle in w2/w3 for a memory send.
        Success(u64),
        Error(FfaError),
        Other([u64; 4]),
    }

    impl fmt::Display for Reply {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Reply::Success(_) => f.write_str("FFA_SUCCESS"),
                Reply::Error(e) => write!(f, "FFA_ERROR {}", error_name(*e)),
                Reply::Other(r) => write!(f, "x0={:#x} x1={:#x} x2={:#x} x3={:#x}", r[0], r[1], r[2], r[3]),
            }
        }
    }

    fn reply(r: &[u64; 18]) -> Reply {
        let f = r[0] as u32;
        if f == fid::FFA_SUCCESS_32 || f == fid::FFA_SUCCESS_64 {
            Reply::Success((r[2] & 0xffff_ffff) | (r[3] & 0xffff_ffff) << 32)
        } else if f == fid::FFA_ERROR {
            FfaError::try_from(r[2] as i32).map_or(Reply::Other([r[0], r[1], r[2], r[3]]), Reply::Error)
        } else {
            Reply::Other([r[0], r[1], r[2], r[3]])
        }
    }

    /// FFA_MEM_SHARE_32 or FFA_MEM_LEND_32 (DEN0077 v1.2, "Memory management
    /// interfaces") of one page at `ipa` to the isolation SP, the whole
    /// descriptor in the TX buffer (x1 total length = x2 fragment length,
    /// x3/x4 0).
    fn send(ffa: &FfaClient<'_, Hvc>, f: FuncId, me: u16, ipa: u64) -> Reply {
        let attributes = if f == FuncId::MemShare32 { super::ATTR_NORMAL_WB_IS } else { 0 };
        put_tx(&super::descriptor(me, super::ISOLATION_SP, attributes, ipa, 1));
        let mut a = [0u64; 18];
        a[0] = f as u64;
        a[1] = super::DESCRIPTOR_LEN as u64;
        a[2] = super::DESCRIPTOR_LEN as u64;
        reply(&ffa.call_regs(&a))
    }

    /// FFA_MEM_RECLAIM (DEN0077 v1.2): w1/w2 the handle, w3 flags 0.
    fn reclaim(ffa: &FfaClient<'_, Hvc>, handle: u64) -> Reply {
        let mut a = [0u64; 18];
        a[0] = FuncId::MemReclaim as u64;
        a[1] = handle & 0xffff_ffff;
        a[2] = handle >> 32;
        reply(&ffa.call_regs(&a))
    }

    struct Checks {
        passed: u32,
        failed: u32,
    }

    impl Checks {
        fn report(&mut self, what: &str, ok: bool, detail: fmt::Arguments<'_>) -> bool {
            if ok {
                self.passed += 1;
                let _ = writeln!(Uart, "[ffa-guest] {what}: ok {detail}");
            } else {
                self.failed += 1;
                let _ = writeln!(Uart, "[ffa-guest] {what}: FAIL {detail}");
            }
            ok
        }
    }

    /// A send of memory the VM does not own: DENIED (or INVALID_PARAMETERS).
    fn refused(r: Reply) -> bool {
        matches!(r, Reply::Error(FfaError::Denied | FfaError::InvalidParameters))
    }

    fn run(ffa: &FfaClient<'_, Hvc>, me: u16, c: &mut Checks) {
        if !c.report("rxtx_map", ffa.rxtx_map(RX, TX, 1).is_ok(), format_args!("RX {RX:#x} TX {TX:#x}")) {
            return;
        }
        let r = send(ffa, FuncId::MemShare32, me, OUTSIDE);
        c.report("share_outside_ram", refused(r), format_args!("IPA {OUTSIDE:#x}: {r}"));
        let r = send(ffa, FuncId::MemShare32, me, RX);
        c.report("share_rx_buffer", refused(r), format_args!("IPA {RX:#x}: {r}"));
        if write(LENT, PATTERN).is_err() || read(LENT) != Ok(PATTERN) {
            c.report("lent_page_ready", false, format_args!("IPA {LENT:#x} not writable before the lend"));
            return;
        }
        let r = send(ffa, FuncId::MemLend32, me, LENT);
        let Reply::Success(handle) = r else {
            c.report("lend", false, format_args!("IPA {LENT:#x}: {r}"));
            return;
        };
        c.report("lend", true, format_args!("IPA {LENT:#x} to {:#06x}: handle {handle:#x}", super::ISOLATION_SP));
        let rd = read(LENT);
        c.report("read_lent_faults", rd.is_err_and(|e| super::is_external_abort(e, false)), format_args!("{rd:x?}"));
        let wr = write(LENT, !PATTERN);
        c.report("write_lent_faults", wr.is_err_and(|e| super::is_external_abort(e, true)), format_args!("{wr:x?}"));
        let r = send(ffa, FuncId::MemShare32, me, LENT);
        c.report("share_lent_page", refused(r), format_args!("IPA {LENT:#x}: {r}"));
        let r = reclaim(ffa, handle);
        c.report("reclaim", matches!(r, Reply::Success(_)), format_args!("handle {handle:#x}: {r}"));
        let rd = read(LENT);
        c.report("read_reclaimed", rd == Ok(PATTERN), format_args!("{rd:x?}"));
        let r = reclaim(ffa, super::UNKNOWN_HANDLE);
        c.report("reclaim_unknown_handle", matches!(r, Reply::Error(FfaError::InvalidParameters)), format_args!("handle {:#x}: {r}", super::UNKNOWN_HANDLE));
        // Left lent: VM teardown must reclaim it for the next life's lend.
        let r = send(ffa, FuncId::MemLend32, me, LENT);
        match r {
            Reply::Success(h) => c.report("lend_again", true, format_args!("IPA {LENT:#x}: handle {h:#x}, left lent")),
            _ => c.report("lend_again", false, format_args!("IPA {LENT:#x}: {r}")),
        };
    }


    /// An FF-A call with w1..w4 (the notification calls' layout).
    fn call4(ffa: &FfaClient<'_, Hvc>, f: u32, w: [u64; 4]) -> [u64; 18] {
        let mut a = [0u64; 18];
        a[0] = f as u64;
        a[1..5].copy_from_slice(&w);
        ffa.call_regs(&a)
    }

    fn is_error(r: &[u64; 18], e: FfaError) -> bool {
        matches!(reply(r), Reply::Error(x) if x == e)
    }

    fn is_ok(r: &[u64; 18]) -> bool {
        matches!(reply(r), Reply::Success(_))
    }

    /// mp's `CMD_FFA`: mp makes call `f` with w1..w4; its x0, w2|w3, w4|w5, w6, w7.
    fn mp_call(ffa: &FfaClient<'_, Hvc>, me: u16, f: u32, w1: u64, w2: u64, bitmap: u64) -> Result<[u64; 5], CallError> {
        ffa.direct_req64(me, super::MP_SP, [super::MP_CMD_FFA, f as u64, w1, w2, bitmap])
    }

    /// 32-bit MMIO write to the vGIC.
    fn gic_write(addr: u64, v: u32) {
        // SAFETY: a register of the distributor or redistributor ns-hyp
        // emulates for this VM (MMU off: Device memory, one MMIO exit).
        unsafe { core::ptr::write_volatile(addr as *mut u32, v) };
    }

    /// The GIC for the NPI: distributor Group 1 on (ARE), vCPU 0's
    /// redistributor awake with SGI [`super::NPI_INTID`] Group 1 and enabled,
    /// the CPU interface taking every priority.  PSTATE.I stays masked: the
    /// NPI is polled (ISR_EL1.I, then ICC_IAR1_EL1), never taken.
    fn gic_init() {
        gic_write(super::GICD, 1 << 4 | 1 << 1);
        gic_write(super::GICR + 0x14, 0);
        gic_write(super::GICR + 0x1_0080, u32::MAX);
        gic_write(super::GICR + 0x1_0100, 1 << super::NPI_INTID);
        // SAFETY: this vCPU's virtual CPU interface: system registers on,
        // priority mask open, Group 1 enabled.
        unsafe {
            core::arch::asm!("msr icc_sre_el1, {}", "isb", in(reg) 7u64, options(nostack));
            core::arch::asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64, options(nostack));
            core::arch::asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) 1u64, options(nostack));
        }
    }

    /// Waits up to `ms` milliseconds for an interrupt (ISR_EL1.I), then
    /// acknowledges and ends it: its INTID, or None if none came.
    fn wait_interrupt(ms: u64) -> Option<u32> {
        let hz: u64;
        // SAFETY: reads the counter frequency register.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
        let t = cntvct();
        loop {
            let isr: u64;
            // SAFETY: reads ISR_EL1 (pending virtual IRQ/FIQ/SError).
            unsafe { core::arch::asm!("mrs {}, isr_el1", out(reg) isr, options(nomem, nostack)) };
            if isr & (1 << 7) != 0 {
                let i: u64;
                // SAFETY: acknowledges the highest-priority pending Group 1
                // interrupt, then ends it (EOImode 0: also deactivates).
                unsafe {
                    core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) i, options(nostack));
                    core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) i, options(nostack));
                }
                return Some(i as u32);
            }
            if cntvct() - t > hz / 1000 * ms {
                return None;
            }
        }
    }

    /// Writes an indirect message of `payload` from `me` to `to` into TX.
    fn put_message(me: u16, to: u16, payload: [u64; 2]) {
        let h = super::message_header(me, to, 16);
        let mut m = [0u8; super::HEADER + 16];
        m[..super::HEADER].copy_from_slice(&h);
        m[super::HEADER..super::HEADER + 8].copy_from_slice(&payload[0].to_le_bytes());
        m[super::HEADER + 8..].copy_from_slice(&payload[1].to_le_bytes());
        for (i, w) in m.chunks_exact(8).enumerate() {
            let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
            // SAFETY: our TX page, in our RAM.
            unsafe { core::ptr::write_volatile((TX + 8 * i as u64) as *mut u64, v) };
        }
    }

    const GET_ALL: u64 = 0xf;
    const NOT_SUPPORTED: u32 = fid::FFA_NOTIFICATION_BITMAP_CREATE;

    /// `n`: everything between this VM and ns-hyp / mp, and the peer bound.
    fn notifications(ffa: &FfaClient<'_, Hvc>, me: u16, peer: u16, c: &mut Checks) {
        let me64 = me as u64;
        let mp = super::MP_SP as u64;
        // Our RX/TX pair (endpoint 1 mapped it for its memory checks: DENIED then).
        let m = ffa.rxtx_map(RX, TX, 1);
        c.report("notif_rxtx_map", matches!(m, Ok(()) | Err(CallError::Ffa(FfaError::Denied))), format_args!("{m:?}"));
        gic_init();
        let npi = ffa.features(1);
        c.report("features_npi", npi == Ok(super::NPI_INTID), format_args!("{npi:?}"));
        let sri = ffa.features(2);
        c.report("features_no_sri", sri == Err(CallError::Ffa(FfaError::NotSupported)), format_args!("{sri:?}"));
        // The hypervisor's calls are not a VM's.
        let mut refused = 0;
        for f in [NOT_SUPPORTED, fid::FFA_NOTIFICATION_BITMAP_DESTROY, fid::FFA_NOTIFICATION_INFO_GET_64] {
            refused += is_error(&call4(ffa, f, [me64, 1, 0, 0]), FfaError::NotSupported) as u32;
        }
        c.report("hypervisor_calls_refused", refused == 3, format_args!("{refused} of 3 NOT_SUPPORTED"));
        // Only for itself: another receiver, another sender, another's bitmaps.
        let r = [
            call4(ffa, fid::FFA_NOTIFICATION_BIND, [mp << 16 | peer as u64, 0, super::SP_BIT, 0]),
            call4(ffa, fid::FFA_NOTIFICATION_SET, [(peer as u64) << 16 | mp, 0, super::TO_SP_BIT, 0]),
            call4(ffa, fid::FFA_NOTIFICATION_GET, [peer as u64, GET_ALL, 0, 0]),
            call4(ffa, fid::FFA_NOTIFICATION_GET, [8 << 16 | me64, GET_ALL, 0, 0]),
        ];
        let n = r.iter().filter(|r| is_error(r, FfaError::InvalidParameters)).count();
        c.report("only_for_itself", n == r.len(), format_args!("{n} of {} INVALID_PARAMETERS", r.len()));
        // mp notifies us: bound, set by mp, the NPI, then GET.
        let b = call4(ffa, fid::FFA_NOTIFICATION_BIND, [mp << 16 | me64, 0, super::SP_BIT, 0]);
        c.report("bind_sp_sender", is_ok(&b), format_args!("{}", reply(&b)));
        let set = mp_call(ffa, me, fid::FFA_NOTIFICATION_SET, mp << 16 | me64, 0, super::SP_BIT);
        c.report("sp_sets", matches!(set, Ok(a) if a[0] as u32 == fid::FFA_SUCCESS_32), format_args!("{set:x?}"));
        let i = wait_interrupt(2000);
        c.report("npi_from_sp", i == Some(super::NPI_INTID), format_args!("{i:?}"));
        let g = call4(ffa, fid::FFA_NOTIFICATION_GET, [me64, GET_ALL, 0, 0]);
        let from_sp = g[2] & 0xffff_ffff | g[3] << 32;
        c.report("get_from_sp", is_ok(&g) && from_sp == super::SP_BIT, format_args!("{} SPs' {from_sp:#x}", reply(&g)));
        let again = call4(ffa, fid::FFA_NOTIFICATION_GET, [me64, GET_ALL, 0, 0]);
        c.report("get_takes", is_ok(&again) && again[2] == 0, format_args!("then {:#x}", again[2]));
        // We notify mp: mp binds us; an unbound bit is DENIED.
        let b = mp_call(ffa, me, fid::FFA_NOTIFICATION_BIND, me64 << 16 | mp, 0, super::TO_SP_BIT);
        c.report("sp_binds_vm", matches!(b, Ok(a) if a[0] as u32 == fid::FFA_SUCCESS_32), format_args!("{b:x?}"));
        let s1 = call4(ffa, fid::FFA_NOTIFICATION_SET, [me64 << 16 | mp, 0, super::TO_SP_BIT, 0]);
        let s2 = call4(ffa, fid::FFA_NOTIFICATION_SET, [me64 << 16 | mp, 0, super::TO_SP_BIT << 1, 0]);
        c.report("set_to_sp", is_ok(&s1) && is_error(&s2, FfaError::Denied), format_args!("{}, unbound: {}", reply(&s1), reply(&s2)));
        // mp reads it on whichever context serves us: the others refuse its vCPU id.
        let got = (0..8u64).find_map(|v| mp_call(ffa, me, fid::FFA_NOTIFICATION_GET, v << 16 | mp, 2, 0).ok().filter(|a| a[0] as u32 == fid::FFA_SUCCESS_32));
        c.report("sp_gets", got.is_some_and(|a| a[2] & super::TO_SP_BIT != 0), format_args!("{got:x?}"));
        let u = mp_call(ffa, me, fid::FFA_NOTIFICATION_UNBIND, me64 << 16 | mp, 0, super::TO_SP_BIT);
        c.report("sp_unbinds_vm", matches!(u, Ok(a) if a[0] as u32 == fid::FFA_SUCCESS_32), format_args!("{u:x?}"));
        // An indirect message to mp, read back by mp.
        let _ = ffa.direct_req64(me, super::MP_SP, [super::MP_CMD_MAP, 0, 0, 0, 0]);
        let payload = [0x5155_4144_0000_0000 | me64, 0x4d53_4732];
        put_message(me, super::MP_SP, payload);
        let r = call4(ffa, fid::FFA_MSG_SEND2, [0, 0, 0, 0]);
        c.report("send2_to_sp", is_ok(&r), format_args!("{}", reply(&r)));
        let read = ffa.direct_req64(me, super::MP_SP, [super::MP_CMD_READ, 0, 0, 0, 0]);
        c.report("sp_reads", matches!(read, Ok(a) if a[1] == me64 << 16 | mp && a[2] == 16 && [a[3], a[4]] == payload), format_args!("{read:x?}"));
        // Bad messages: another sender in the header, an unknown receiver.
        put_message(peer, super::MP_SP, payload);
        let r1 = call4(ffa, fid::FFA_MSG_SEND2, [0, 0, 0, 0]);
        put_message(me, 0x7ff0, payload);
        let r2 = call4(ffa, fid::FFA_MSG_SEND2, [0, 0, 0, 0]);
        c.report("send2_bad", is_error(&r1, FfaError::InvalidParameters) && is_error(&r2, FfaError::InvalidParameters), format_args!("{}, {}", reply(&r1), reply(&r2)));
        let b = call4(ffa, fid::FFA_NOTIFICATION_BIND, [(peer as u64) << 16 | me64, 0, super::PEER_BIT, 0]);
        c.report("bind_peer", is_ok(&b), format_args!("{:#06x}: {}", peer, reply(&b)));
    }

    /// `s`: notification and message to the peer.
    fn send_to_peer(ffa: &FfaClient<'_, Hvc>, me: u16, peer: u16, c: &mut Checks) {
        let set = call4(ffa, fid::FFA_NOTIFICATION_SET, [(me as u64) << 16 | peer as u64, 0, super::PEER_BIT, 0]);
        c.report("set_to_peer", is_ok(&set), format_args!("{}", reply(&set)));
        put_message(me, peer, [0x5045_4552_0000_0000 | me as u64, 0x4d53_4732]);
        let r = call4(ffa, fid::FFA_MSG_SEND2, [0, 0, 0, 0]);
        c.report("send2_to_peer", is_ok(&r), format_args!("{}", reply(&r)));
        let r = call4(ffa, fid::FFA_MSG_SEND2, [0, 0, 0, 0]);
        c.report("send2_peer_busy", is_error(&r, FfaError::Busy), format_args!("{}", reply(&r)));
    }

    /// `g`: the peer's notification and message.
    fn receive_from_peer(ffa: &FfaClient<'_, Hvc>, me: u16, peer: u16, c: &mut Checks) {
        let i = wait_interrupt(2000);
        c.report("npi_from_peer", i == Some(super::NPI_INTID), format_args!("{i:?}"));
        let g = call4(ffa, fid::FFA_NOTIFICATION_GET, [me as u64, GET_ALL, 0, 0]);
        let from_vm = g[4] & 0xffff_ffff | g[5] << 32;
        c.report("get_from_peer", is_ok(&g) && from_vm == super::PEER_BIT && g[7] & 1 == 1, format_args!("VMs' {from_vm:#x}, hypervisor framework {:#x}", g[7]));
        let word = |at: u64| {
            // SAFETY: our RX page, in our RAM: ns-hyp wrote the message there.
            unsafe { core::ptr::read_volatile((RX + at) as *const u64) }
        };
        let ids = (word(8) >> 32) as u32;
        let (p0, p1) = (word(super::HEADER as u64), word(super::HEADER as u64 + 8));
        c.report("message_from_peer", ids == (peer as u32) << 16 | me as u32 && p0 == 0x5045_4552_0000_0000 | peer as u64 && p1 == 0x4d53_4732, format_args!("ids {ids:#x} payload {p0:#x} {p1:#x}"));
        let r = ffa.rx_release();
        let again = ffa.rx_release();
        c.report("rx_release", r.is_ok() && again == Err(CallError::Ffa(FfaError::Denied)), format_args!("{r:?}, again {again:?}"));
    }

    /// mp's `CMD_SEND`: an indirect message of 16 bytes `payload` from mp to
    /// `me`; mp's FFA_MSG_SEND2 answer: x0 and w2.
    fn mp_send(ffa: &FfaClient<'_, Hvc>, me: u16, payload: [u64; 2]) -> Result<[u64; 5], CallError> {
        ffa.direct_req64(me, super::MP_SP, [super::MP_CMD_SEND, me as u64, payload[0], payload[1], 0])
    }

    /// The indirect message in RX: (sender << 16 | receiver, payload 0..16).
    fn rx_message() -> (u32, u64, u64) {
        let word = |at: u64| {
            // SAFETY: our RX page, in our RAM: the SPMC or ns-hyp wrote it.
            unsafe { core::ptr::read_volatile((RX + at) as *const u64) }
        };
        ((word(8) >> 32) as u32, word(super::HEADER as u64), word(super::HEADER as u64 + 8))
    }

    /// `i`: indirect messages from mp, through the SPMC into our RX buffer.
    fn from_sp(ffa: &FfaClient<'_, Hvc>, me: u16, _peer: u16, c: &mut Checks) {
        let mp = super::MP_SP as u32;
        let _ = ffa.direct_req64(me, super::MP_SP, [super::MP_CMD_MAP, 0, 0, 0, 0]);
        let payload = [0x4d50_544f_0000_0000 | me as u64, 0x564d_5f49_4e44];
        let r = mp_send(ffa, me, payload);
        c.report("sp_sends_to_vm", matches!(r, Ok(a) if a[0] as u32 == fid::FFA_SUCCESS_32), format_args!("{r:x?}"));
        let i = wait_interrupt(2000);
        c.report("npi_from_sp_message", i == Some(super::NPI_INTID), format_args!("{i:?}"));
        let g = call4(ffa, fid::FFA_NOTIFICATION_GET, [me as u64, GET_ALL, 0, 0]);
        c.report("get_spm_rx_full", is_ok(&g) && g[6] & 1 == 1, format_args!("{} SPM framework {:#x}", reply(&g), g[6]));
        let (ids, p0, p1) = rx_message();
        c.report("message_from_sp", ids == mp << 16 | me as u32 && [p0, p1] == payload, format_args!("ids {ids:#x} payload {p0:#x} {p1:#x}"));
        // Unreleased: mp's next message is BUSY (the VM owns its RX buffer).
        let r = mp_send(ffa, me, [1, 2]);
        let busy = i32::from(FfaError::Busy) as u32 as u64;
        c.report("sp_send_busy", matches!(r, Ok(a) if a[0] as u32 == fid::FFA_ERROR && a[1] & 0xffff_ffff == busy), format_args!("{r:x?}"));
        let rel = ffa.rx_release();
        let again = ffa.rx_release();
        c.report("rx_release_to_spmc", rel.is_ok() && again == Err(CallError::Ffa(FfaError::Denied)), format_args!("{rel:?}, again {again:?}"));
        // Released: the next one arrives.
        let payload = [0x4d50_544f_0000_0100 | me as u64, 0x564d_5f49_4e45];
        let r = mp_send(ffa, me, payload);
        let i = wait_interrupt(2000);
        let (ids, p0, p1) = rx_message();
        let ok = matches!(r, Ok(a) if a[0] as u32 == fid::FFA_SUCCESS_32) && i == Some(super::NPI_INTID) && ids == mp << 16 | me as u32 && [p0, p1] == payload;
        c.report("sp_sends_again", ok, format_args!("{r:x?}, {i:?}, ids {ids:#x} payload {p0:#x} {p1:#x}"));
        let g = call4(ffa, fid::FFA_NOTIFICATION_GET, [me as u64, GET_ALL, 0, 0]);
        let rel = ffa.rx_release();
        c.report("release_again", is_ok(&g) && g[6] & 1 == 1 && rel.is_ok(), format_args!("SPM framework {:#x}, {rel:?}", g[6]));
    }

    /// `a`: what mp heard of this VM and of the peer (powered off by now).
    fn availability(ffa: &FfaClient<'_, Hvc>, me: u16, peer: u16, c: &mut Checks) {
        for (who, id, destroyed) in [("self", me, 0), ("peer", peer, 1)] {
            let r = ffa.direct_req64(me, super::MP_SP, [super::MP_CMD_VM_SEEN, id as u64, 0, 0, 0]);
            // Handle: life 1 << 16 | the VM's id.
            let ok = matches!(r, Ok(a) if a[0] == 1 && a[1] == destroyed && a[2] == 1 << 16 | id as u64);
            let what = if who == "self" { "vm_created_seen" } else { "peer_destroyed_seen" };
            c.report(what, ok, format_args!("{id:#06x}: [created, destroyed, handle, ..] {r:x?}"));
        }
    }

    #[unsafe(no_mangle)]
    extern "C" fn guest_main() -> ! {
        let ffa = FfaClient::new(&Hvc);
        let mut c = Checks { passed: 0, failed: 0 };
        let v = ffa.version(REQUESTED_VERSION);
        let me = match v {
            Ok(v) if v.0 == 1 => {
                c.report("version", true, format_args!("{}.{}", v.0, v.1));
                ffa.id_get()
            }
            _ => {
                c.report("version", false, format_args!("{v:?}"));
                Err(CallError::SmcccNotSupported)
            }
        };
        let id = match me {
            Ok(1) => {
                c.report("id_get", true, format_args!("endpoint 0x0001"));
                run(&ffa, 1, &mut c);
                let _ = writeln!(Uart, "[ffa-guest] {} passed, {} failed", c.passed, c.failed);
                1
            }
            Ok(id) => {
                let _ = writeln!(Uart, "[ffa-guest] endpoint {id:#06x}: no checks, idle");
                id
            }
            Err(e) => {
                c.report("id_get", false, format_args!("{e}"));
                let _ = writeln!(Uart, "[ffa-guest] {} passed, {} failed", c.passed, c.failed);
                0
            }
        };
        // Endpoints 1 and 2 are each other's peer.
        let peer = if id == 1 { 2 } else { 1 };
        let _ = writeln!(Uart, "[ffa-guest] waiting: r resets, o powers off, n s g i a notify");
        loop {
            let (what, f): (&str, fn(&FfaClient<'_, Hvc>, u16, u16, &mut Checks)) = match read_byte() {
                b'r' => psci(shared::abi::psci::PSCI_SYSTEM_RESET),
                b'o' => psci(shared::abi::psci::PSCI_SYSTEM_OFF),
                b'n' => ("notifications", notifications),
                b's' => ("sent", send_to_peer),
                b'g' => ("received", receive_from_peer),
                b'a' => ("availability", availability),
                b'i' => ("from_sp", from_sp),
                _ => continue,
            };
            let mut c = Checks { passed: 0, failed: 0 };
            f(&ffa, id, peer, &mut c);
            let _ = writeln!(Uart, "[ffa-guest] {what}: {} passed, {} failed", c.passed, c.failed);
        }
    }

    /// PSCI SYSTEM_OFF or SYSTEM_RESET over HVC; does not return when ns-hyp honours it.
    fn psci(f: u32) -> ! {
        // SAFETY: a PSCI call (DEN0022 §5.10/§5.11); x0-x3 clobbered at most.
        unsafe { core::arch::asm!("hvc #0", inout("x0") f as u64 => _, out("x1") _, out("x2") _, out("x3") _, options(nostack)) };
        loop {
            // SAFETY: nothing left to do.
            unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        let _ = writeln!(Uart, "[ffa-guest] PANIC");
        psci(shared::abi::psci::PSCI_SYSTEM_OFF)
    }
}
