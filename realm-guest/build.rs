// realm-guest runs at R-EL1 with its MMU off, so it has no .bss: everything,
// the stack included, is in the loaded image (the Host measures all of it).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default() != "none" {
        return;
    }
    let script = "ENTRY(_start)
SECTIONS
{
    . = 0x40000000;
    .text : { KEEP(*(.text.entry)) *(.text .text.*) }
    .rodata : { *(.rodata .rodata.*) }
    . = ALIGN(4096);
    .data : { *(.data .data.*) *(.bss .bss.*) *(COMMON) }
    . = ALIGN(4096);
    __image_end = .;
    /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) }
}
";
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("realm.ld");
    std::fs::write(&out, script).unwrap();
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
}
