//! ns-hyp's guest-facing exit handling as a guest reaches it: MMIO accesses
//! to the vGIC distributor and redistributors, the PL011 and the virtio slot
//! (and around them), data-abort syndromes and instructions to decode, PSCI
//! calls, trapped system registers; the input is the stream of choices that
//! ns-hyp's seeded campaign draws from a generator (ns-hyp/src/vm/fuzz.rs).
//! After each: no panic, an access off the bus aborts, PSCI never starts a
//! vCPU that is on or does not exist, a decoded access is 1..8 bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nshyp_logic::fuzz_one(data);
});
