include!("../../shared/build_support.rs");

// hvc-bench-guest runs at EL1 with its MMU off.  Linked where xtask preloads a
// guest kernel under ns-hyp: PA 0x80200000 = guest IPA 0x40200000
// (ci/xtask/src/tests/nshyp.rs).
fn main() {
    quadrant_link_flat_payload(0x4020_0000);
}
