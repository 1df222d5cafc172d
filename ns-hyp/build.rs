include!("../shared/build_support.rs");

fn main() {
    // Loaded at 0x60000000: TF-A's BL33 address on qemu, and where QEMU's `-kernel`
    // puts an arm64 Image whose header says text_offset = 0x20000000.
    quadrant_link(0x6000_0000, 0x1_0000 * 8);
}
