// hvc-bench-guest runs at EL1 with its MMU off and no .bss zeroing: the stack
// is in the loaded image.  Linked where xtask preloads a guest kernel under
// ns-hyp: PA 0x80200000 = guest IPA 0x40200000 (ci/xtask/src/tests/nshyp.rs).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default() != "none" {
        return;
    }
    let script = "ENTRY(_start)
SECTIONS
{
    . = 0x40200000;
    .text : { KEEP(*(.text.entry)) *(.text .text.*) }
    .rodata : { *(.rodata .rodata.*) }
    . = ALIGN(4096);
    .data : { *(.data .data.*) *(.bss .bss.*) *(COMMON) }
    . = ALIGN(4096);
    __image_end = .;
    /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
}
";
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guest.ld");
    std::fs::write(&out, script).unwrap();
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
}
