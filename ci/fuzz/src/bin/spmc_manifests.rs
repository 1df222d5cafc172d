//! Manifests (device trees): the SPMC manifest and partition manifests as
//! they arrive in the FIP and SP packages.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = spmc::manifest::SpmcManifest::parse(data);
    let _ = spmc::partition::manifest::PartitionManifest::parse(data, 4);
    let _ = shared::fdt::total_size(data);
});
