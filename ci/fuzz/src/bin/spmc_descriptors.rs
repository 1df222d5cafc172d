//! The FF-A memory descriptors from another world's TX buffer (DEN0077 v1.2
//! chapter "Memory management interfaces"): every parser on any bytes.
#![no_main]
use spmc::ffa::memory::descriptor;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&v, rest)) = data.split_first() else { return };
    let version = [0x1_0000, 0x1_0001, 0x1_0002, 0x2_0000][v as usize & 3];
    for need in [false, true] {
        if let Ok(d) = descriptor::parse(rest, version, need) {
            assert!((1..=descriptor::MAX_RECEIVERS).contains(&d.receiver_count));
            if d.composite_offset != 0 {
                assert!(d.composite_offset + descriptor::COMPOSITE_SIZE <= rest.len());
            }
            let _ = d.constituent_offset(d.address_range_count as usize);
        }
    }
    let _ = descriptor::parse_relinquish(rest);
    let _ = descriptor::parse_hypervisor_retrieve(rest, version);
    if let Ok(it) = descriptor::constituents(rest) {
        for c in it {
            let _ = (c.end(), c.size());
        }
    }
});
