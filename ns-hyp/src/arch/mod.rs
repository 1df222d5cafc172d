//! Entry (with an arm64 Linux Image header so QEMU's `-kernel` and bootloaders
//! load us like a kernel), panic handler, and the EL2 exception hook.

use shared::arch::ExceptionFrame;

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // arm64 Image header (Linux Documentation/arch/arm64/booting.rst).
    "b 1f",                   // code0
    ".long 0",                // code1
    ".quad 0x20000000",       // text_offset: RAM base 0x40000000 + this = 0x60000000
    ".quad __image_end - _start", // image_size
    ".quad 0x2",              // flags: little endian, 4 KiB pages, 2 MiB aligned base
    ".quad 0, 0, 0",
    ".ascii \"ARM\\x64\"",
    ".long 0",
    "1:",
    // x0 = DTB.  CPU index from MPIDR_EL1 Aff0/Aff1 (QEMU virt: 16 CPUs per cluster).
    "mrs x6, mpidr_el1",
    "and x8, x6, #0xff",
    "ubfx x9, x6, #8, #8",
    "add x6, x8, x9, lsl #4",
    "cmp x6, #0",
    "cset x7, eq",
    "b quadrant_entry_common",
);


#[unsafe(no_mangle)]
extern "C" fn quadrant_main(x0: u64, _x1: u64, _x2: u64, _x3: u64, _x4: u64, cpu: u64) -> ! {
    crate::hyp_main(x0, cpu)
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_el2_exception(frame: &mut ExceptionFrame, vector: u64) {
    let esr = shared::read_sysreg!(esr_el2);
    panic!("unexpected EL2 exception: vector {vector} esr {esr:#x} elr {:#x} far {:#x}", frame.elr, shared::read_sysreg!(far_el2));
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    shared::console::panic_print(info);
    shared::arch::halt()
}
