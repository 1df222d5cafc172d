include!("../shared/build_support.rs");

fn main() {
    // BL32_BASE on TF-A's qemu platform (plat/qemu/qemu/include/platform_def.h);
    // the SPMC manifest's load_address/entrypoint say the same.  Max 2 MiB.
    quadrant_link(0x0e10_0000, 0x1_0000 * 8);
}
