include!("../shared/build_support.rs");

// realm-guest runs at R-EL1 with its MMU off, linked at the IPA where the Host
// loads it (docs/rmm.md).
fn main() {
    quadrant_link_flat_payload(0x4000_0000);
}
