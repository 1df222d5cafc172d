include!("../../shared/build_support.rs");

// ffa-guest runs at EL1 with its MMU off.  Linked where ns-hyp places a
// stored or preloaded Image with text_offset 0: guest IPA 0x40200000
// (ci/xtask/src/tests/guest_ffa_isolation.rs).
fn main() {
    quadrant_link_flat_payload(0x4020_0000);
}
