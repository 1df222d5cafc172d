include!("../../shared/build_support.rs");

fn main() {
    // BL33 under TF-A on qemu: loaded and entered at 0x60000000 (as ns-hyp).
    quadrant_link(0x6000_0000, 0x1_0000 * 8);
}
