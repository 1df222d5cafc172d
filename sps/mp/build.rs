include!("../../shared/build_support.rs");

fn main() {
    // tfa-integration/sp/mp.dts: load-address 0x0e400000 + entrypoint-offset
    // 0x4000.  One 16 KiB stack per execution context (4 contexts).
    quadrant_link(0x0e40_4000, 0x4000 * 4);
}
