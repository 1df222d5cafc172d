include!("../../shared/build_support.rs");

// guest-cpu-features is a flat binary (no arm64 Image header) linked where
// QEMU virt's `-kernel` loads one: RAM + 0x80000 (hw/arm/boot.c,
// KERNEL64_LOAD_ADDR) = 0x40080000, the guest IPA xtask preloads it at under
// ns-hyp (PA 0x80080000).  It runs with its MMU off.
fn main() {
    quadrant_link_flat_payload(0x4008_0000);
}
