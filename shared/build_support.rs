// Included by each image's build.rs (`include!("../shared/build_support.rs")`):
// writes the image's linker script and passes it to the linker, for bare-metal
// builds only, so host `cargo test` builds stay ordinary binaries.
#[allow(dead_code)]
fn quadrant_link(base: u64, stacks: u64) {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "none" {
        return;
    }
    let template = include_str!("link.ld.in");
    let script = template
        .replace("@BASE@", &format!("{base:#x}"))
        .replace("@STACKS@", &format!("{stacks:#x}"));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("image.ld");
    std::fs::write(&out, script).unwrap();
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
}

/// Linker script for a flat EL1 payload (a guest test program) that runs with
/// its MMU off and zeroes no .bss: everything, the stack included, is in the
/// loaded image, so a Host that measures the image measures all of it.
#[allow(dead_code)]
fn quadrant_link_flat_payload(base: u64) {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default() != "none" {
        return;
    }
    let script = format!(
        "ENTRY(_start)
SECTIONS
{{
    . = {base:#x};
    .text : {{ KEEP(*(.text.entry)) *(.text .text.*) }}
    .rodata : {{ *(.rodata .rodata.*) }}
    . = ALIGN(4096);
    .data : {{ *(.data .data.*) *(.bss .bss.*) *(COMMON) }}
    . = ALIGN(4096);
    __image_end = .;
    /DISCARD/ : {{ *(.comment) *(.note*) *(.eh_frame*) }}
}}
"
    );
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("payload.ld");
    std::fs::write(&out, script).unwrap();
    println!("cargo:rustc-link-arg-bins=-T{}", out.display());
}
