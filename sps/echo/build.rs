include!("../../shared/build_support.rs");

fn main() {
    // tfa-integration/sp/echo.dts: load-address 0x0e300000 + entrypoint-offset
    // 0x4000 (sptool's default image offset).  One 16 KiB stack (one context).
    quadrant_link(0x0e30_4000, 0x4000);
}
