include!("../shared/build_support.rs");

fn main() {
    // RMM_BASE on TF-A's qemu platform (REALM_DRAM_BASE = NS DRAM + 1 MiB of DTB):
    // BL2 loads the RMM image there and the RMMD enters it at that address.
    quadrant_link(0x4010_0000, 0x1_0000 * 8);
}
