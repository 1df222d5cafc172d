//! hvc-bench-guest: a bare-metal EL1 guest for `cargo xtask bench` that times
//! guest -> ns-hyp null-HVC round trips (issue B1's bench row).
//!
//! Load contract: the flat binary (with an arm64 Image header, booting.rst)
//! is preloaded at guest IPA 0x40200000 and entered at its first byte in EL1h
//! with the MMU off, x0 = DTB (unused).  It prints through the PL011 data
//! register ns-hyp emulates at 0x09000000:
//!
//! ```text
//! [hvc-bench] bench guest_floor 10000 <ticks>      isb + CNTVCT read
//! [hvc-bench] bench guest_null_hvc 10000 <ticks>   hvc #0, x0 = 0xc6000000
//! [hvc-bench] bench guest_ffa_direct_req_echo 10000 <ticks>
//! [hvc-bench] bench cntfrq <hz>
//! [hvc-bench] bench done
//! ```
//!
//! The FF-A row (issue B3's bench) is a direct request from this guest, under
//! its own FF-A id, to the echo SP and back through ns-hyp's FF-A proxy; when
//! FFA_VERSION finds no FF-A (no SPMC, or ns-hyp without the proxy) the line
//! is `bench guest_ffa_direct_req_echo skipped: <why>`.
//!
//! Then it asks for PSCI SYSTEM_OFF (DEN0022 §5.10) over HVC.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

/// Round trips per row.
pub const ITERATIONS: u64 = 10_000;
/// ns-hyp's null call: answered at once with SUCCESS (ns-hyp/src/vm/psci.rs).
pub const QUADRANT_NULL_HVC: u64 = 0xc600_0000;
/// The echo SP (tfa-integration/sp/echo.dts `id`), which answers a direct
/// request with its x3..x7.
pub const ECHO_SP_ID: u16 = 0x8001;
/// The words the FF-A row sends (and the echo SP returns).
pub const ECHO_PAYLOAD: [u64; 5] = [0x5155_4144_4245_0001, 2, 3, 4, 5];
/// QEMU virt UART0, emulated by ns-hyp for the guest.
pub const UART_DR: u64 = 0x0900_0000;

#[cfg(target_os = "none")]
mod guest {
    use core::fmt::{self, Write};
    use shared::abi::ffa::fid;
    use shared::ffa_client::{CallError, FfaClient, REQUESTED_VERSION};
    use shared::smccc::Hvc;

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
        "isb",
        "bl guest_main",
        "2: wfi",
        "b 2b",
        stack = sym STACK,
        size = const STACK_SIZE,
    );

    const STACK_SIZE: usize = 0x4000;
    shared::payload_stack!(STACK, STACK_SIZE);

    struct Uart;
    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                // SAFETY: the PL011 data register ns-hyp emulates; each store
                // is one MMIO exit (identity IPA, MMU off: Device memory).
                unsafe { core::ptr::write_volatile(super::UART_DR as *mut u32, b as u32) };
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

    /// `n` iterations of `isb` + CNTVCT read: the floor this run divides by.
    fn floor(n: u64) -> u64 {
        let t0 = cntvct();
        // SAFETY: only the counter and our own registers.
        unsafe {
            core::arch::asm!(
                "3: isb",
                "mrs {t}, cntvct_el0",
                "subs {n}, {n}, #1",
                "b.ne 3b",
                n = inout(reg) n => _,
                t = out(reg) _,
                options(nomem, nostack),
            )
        };
        cntvct() - t0
    }

    /// `n` null HVCs (x0 = QUADRANT_NULL_HVC), each a full trap to ns-hyp and back.
    fn null_hvc(n: u64) -> u64 {
        let t0 = cntvct();
        // SAFETY: an SMCCC call (DEN0028 §2.6): x0-x17 may be clobbered.
        unsafe {
            core::arch::asm!(
                "3: mov x0, {fid}",
                "hvc #0",
                "subs {n}, {n}, #1",
                "b.ne 3b",
                fid = in(reg) super::QUADRANT_NULL_HVC,
                n = inout(reg) n => _,
                out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
                out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                options(nostack),
            )
        };
        cntvct() - t0
    }

    /// One direct request to the echo SP under FF-A id `me`, with the same
    /// client code ns-hyp's own row uses (`FfaClient::direct_req64`), so the
    /// ratio compares the paths, not two clients.  An FFA_INTERRUPT (an
    /// interrupt for the Normal world came while the SP ran: DEN0077 v1.2,
    /// "Interrupt management") is resumed with FFA_RUN until the response.
    /// True when the echo came back whole.
    fn echo_once(ffa: &FfaClient<'_, Hvc>, me: u16) -> bool {
        match ffa.direct_req64(me, super::ECHO_SP_ID, super::ECHO_PAYLOAD) {
            Ok(w) => w == super::ECHO_PAYLOAD,
            Err(CallError::Unexpected(r)) if r[0] as u32 == fid::FFA_INTERRUPT => {
                let mut a = [0u64; 18];
                a[0] = fid::FFA_INTERRUPT as u64;
                a[1] = r[1];
                while a[0] as u32 == fid::FFA_INTERRUPT {
                    let mut run = [0u64; 18];
                    run[0] = fid::FFA_RUN as u64;
                    run[1] = a[1];
                    a = ffa.call_regs(&run);
                }
                a[0] as u32 == fid::FFA_MSG_SEND_DIRECT_RESP_64 && a[3..8] == super::ECHO_PAYLOAD
            }
            Err(_) => false,
        }
    }

    /// The FF-A row: `n` direct requests to the echo SP, or why it cannot run.
    fn ffa_direct_req(n: u64) -> Result<u64, &'static str> {
        let ffa = FfaClient::new(&Hvc);
        match ffa.version(REQUESTED_VERSION) {
            Ok(v) if v.0 == 1 => {}
            Ok(_) => return Err("FF-A major version is not 1"),
            Err(_) => return Err("no FF-A for this guest"),
        }
        let me = ffa.id_get().map_err(|_| "FFA_ID_GET failed")?;
        if !echo_once(&ffa, me) {
            return Err("the echo SP did not echo");
        }
        let t0 = cntvct();
        for _ in 0..n {
            if !echo_once(&ffa, me) {
                return Err("an echo failed during the loop");
            }
        }
        Ok(cntvct() - t0)
    }

    #[unsafe(no_mangle)]
    extern "C" fn guest_main() -> ! {
        let n = super::ITERATIONS;
        let mut out = Uart;
        let f = floor(n);
        let h = null_hvc(n);
        let d = ffa_direct_req(n);
        let hz: u64;
        // SAFETY: reads the counter frequency register.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
        let _ = writeln!(out, "[hvc-bench] bench guest_floor {n} {f}");
        let _ = writeln!(out, "[hvc-bench] bench guest_null_hvc {n} {h}");
        match d {
            Ok(t) => writeln!(out, "[hvc-bench] bench guest_ffa_direct_req_echo {n} {t}"),
            Err(why) => writeln!(out, "[hvc-bench] bench guest_ffa_direct_req_echo skipped: {why}"),
        }
        .ok();
        let _ = writeln!(out, "[hvc-bench] bench cntfrq {hz}");
        let _ = writeln!(out, "[hvc-bench] bench done");
        off()
    }

    fn off() -> ! {
        // SAFETY: PSCI SYSTEM_OFF over HVC; does not return when ns-hyp honours it.
        unsafe { core::arch::asm!("hvc #0", in("x0") shared::abi::psci::PSCI_SYSTEM_OFF as u64, options(nostack)) };
        loop {
            // SAFETY: nothing left to do.
            unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
        }
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        let _ = writeln!(Uart, "[hvc-bench] PANIC");
        off()
    }
}
