//! rmm's RMI dispatcher as the Normal-world Host reaches it, and through
//! REC_ENTER its RSI/PSCI handling as a Realm reaches it: the input is the
//! stream of choices (call, arguments, parameter pages, the Realm's call)
//! that rmm's seeded campaign draws from a generator (rmm/src/rmi/fuzz.rs).
//! After each call: no panic, and a failed call changed no granule state
//! and no Realm-PAS granule.  One machine per thread, reset per input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rmm_logic::fuzz_one(data);
});
