include!("../../shared/build_support.rs");

fn main() {
    // tfa-integration/sp/isolation.dts: load-address 0x0e500000 +
    // entrypoint-offset 0x4000.  One 16 KiB stack (one context).
    quadrant_link(0x0e50_4000, 0x4000);
}
