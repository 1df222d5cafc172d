//! Boot-time self-test of live Stage-2 changes (break-before-make and TLB
//! maintenance, DDI0487 D8.14.1 / D8.13.5) on the CPU we run on, before the
//! guest starts.  A tiny EL1 payload in our own image reads one word at an
//! IPA that a 2 MiB Stage-2 block maps; the block is then split and that one
//! page remapped to another physical page while the table is live; the
//! payload reads again and must see the new page.  A missing or incomplete
//! invalidation (e.g. `TLBI IPAS2E1IS` without `TLBI VMALLE1IS`, which leaves
//! the combined stage 1+2 entry) makes the second read return the old word:
//! QEMU's TLB keeps translations until they are invalidated, as hardware may.

use shared::arch::{El1SysRegs, GuestRegs};
use shared::mm::{self, FramePool, MemKind, PAGE_SIZE};
use shared::{read_sysreg, write_sysreg};

/// VMID of the test's throwaway Stage-2 (the guest's is 1).
const VMID: u64 = 2;
const BLOCK: usize = 2 << 20;
const MARKER_OLD: u64 = 0x5154_4f4c_445f_5047; // "QTOLD_PG"
const MARKER_NEW: u64 = 0x5154_4e45_575f_5047; // "QTNEW_PG"

#[repr(C, align(4096))]
struct Page([u64; 512]);

const fn page(marker: u64) -> Page {
    let mut p = [0u64; 512];
    p[0] = marker;
    Page(p)
}

static OLD_PAGE: Page = page(MARKER_OLD);
static NEW_PAGE: Page = page(MARKER_NEW);

// The payload: x1 = IPA of the word; `hvc` after each read hands x0 to us.
core::arch::global_asm!(
    ".section .text.selftest, \"ax\"",
    ".balign 8",
    ".global quadrant_stage2_selftest_guest",
    "quadrant_stage2_selftest_guest:",
    "ldr x0, [x1]",
    "hvc #0",
    "ldr x0, [x1]",
    "hvc #0",
    "1: b 1b",
);

unsafe extern "C" {
    static quadrant_stage2_selftest_guest: u8;
}

/// Runs the payload until its next HVC; returns its x0.
fn run_to_hvc(regs: &mut GuestRegs) -> Result<u64, &'static str> {
    // SAFETY: VTTBR_EL2 holds the test's table (one read-only/executable
    // block of our image and the remapped page), HCR_EL2 = VM | RW, EL2
    // interrupts are masked.
    let vector = unsafe { shared::arch::enter_guest(regs) };
    let ec = (read_sysreg!(esr_el2) >> 26) & 0x3f;
    if vector == 8 && ec == 0x16 {
        Ok(regs.x[0])
    } else {
        log::warn!("self-test payload: exception vector {} esr {:#x} far {:#x} hpfar {:#x} at {:#x}", vector, read_sysreg!(esr_el2), read_sysreg!(far_el2), read_sysreg!(hpfar_el2), regs.elr);
        Err("the payload did not reach its hvc (unexpected exception)")
    }
}

/// Runs the test; leaves HCR_EL2 and VTTBR_EL2 as they were.
// Not inlined: its frame (tables, closures) must not stay in the boot CPU's
// caller frame for the life of the guest (see shared::arch::entry::STACK_SIZE).
#[inline(never)]
pub fn stage2_break_before_make(pool: &'static spin::Mutex<FramePool>) -> Result<(), &'static str> {
    let code = core::ptr::addr_of!(quadrant_stage2_selftest_guest) as usize;
    let base = code & !(BLOCK - 1);
    let old = core::ptr::addr_of!(OLD_PAGE) as usize;
    let new = core::ptr::addr_of!(NEW_PAGE) as usize;
    if old & !(BLOCK - 1) != base {
        return Err("the test page is not in the payload's 2 MiB block");
    }
    let mut s2 = mm::new_table(pool, mm::Stage2);
    mm::map(&mut s2, 0, base, BLOCK, mm::stage2_attributes(MemKind::Code)).map_err(|_| "cannot map the test block")?;
    s2.mark_active();
    let (hcr, vttbr, vtcr) = (read_sysreg!(hcr_el2), read_sysreg!(vttbr_el2), read_sysreg!(vtcr_el2));
    let mut el1 = El1SysRegs::default();
    el1.save();
    // SAFETY: the test's own VMID and table; the guest has not started and
    // nothing else runs at EL1 on this CPU; restored below.
    unsafe {
        write_sysreg!(vtcr_el2, shared::arch::mmu::vtcr());
        write_sysreg!(vttbr_el2, s2.root_address().0 as u64 | VMID << 48);
        write_sysreg!(hcr_el2, 1 | 1 << 31);
        core::arch::asm!("isb", "tlbi vmalls12e1is", "dsb ish", "isb", options(nostack));
        El1SysRegs::reset().restore();
    }
    let mut regs = GuestRegs::at_entry((code - base) as u64, 0);
    regs.x[1] = (old - base) as u64;
    let result = (|| {
        if run_to_hvc(&mut regs)? != MARKER_OLD {
            return Err("the first read did not see the block's page");
        }
        let vmalle1 = || {
            // SAFETY: TLB maintenance for the current VMID (the test's).
            unsafe { core::arch::asm!("tlbi vmalle1is", "dsb ish", "isb", options(nostack, preserves_flags)) }
        };
        mm::remap_stage2_live(&mut s2, old - base, Some(new), PAGE_SIZE, mm::stage2_attributes(MemKind::ReadOnly), &vmalle1)
            .map_err(|_| "remapping the page failed")?;
        match run_to_hvc(&mut regs)? {
            MARKER_NEW => Ok(()),
            MARKER_OLD => Err("the second read still saw the old page (stale TLB entry)"),
            _ => Err("the second read saw neither page"),
        }
    })();
    // SAFETY: back to what ran before; the test VMID's entries go first.
    unsafe {
        core::arch::asm!("tlbi vmalls12e1is", "dsb ish", options(nostack));
        write_sysreg!(vttbr_el2, vttbr);
        write_sysreg!(vtcr_el2, vtcr);
        write_sysreg!(hcr_el2, hcr);
        el1.restore();
    }
    s2.mark_inactive();
    result
}
