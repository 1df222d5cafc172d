include!("../../shared/build_support.rs");

fn main() {
    // tfa-integration/sp/irq.dts: load-address 0x0e700000 + entrypoint-offset
    // 0x4000.  One 16 KiB stack (one context).
    quadrant_link(0x0e70_4000, 0x4000);
}
