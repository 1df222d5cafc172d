//! ns-hyp's virtio-blk device model as a guest driver reaches it: register
//! writes, descriptor chains (direct, chained, indirect), request headers,
//! available-ring entries and raw guest-memory words, then queue processing,
//! over copying and zero-copy guest memory (ns-hyp/src/vm/fuzz.rs,
//! `virtio_session`).  After each: no panic, the disk is asked only for
//! sectors it has, guest accesses stay in guest memory.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nshyp_logic::virtio_fuzz_one(data);
});
