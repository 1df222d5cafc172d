use super::fake::*;
use super::*;
use crate::report::Lines;
use shared::abi::ffa::FfaError;

fn run(knobs: Knobs) -> (Vec<String>, u32, u32, FakeFirmware) {
    let (fw, mb) = FakeFirmware::new(knobs);
    let firmware = Firmware::detect(&fw);
    let mut lines = Lines::default();
    let (ok, failed) = Prober::new(&fw, &mb, &mut lines, firmware).run_all();
    (lines.0, ok, failed, fw)
}

fn line<'a>(lines: &'a [String], name: &str) -> &'a str {
    let p = format!("probe {}: ", name);
    lines.iter().find(|l| l.starts_with(&p)).map(|s| s.as_str()).unwrap_or_else(|| panic!("no line for {name}: {lines:#?}"))
}

#[test]
fn good_firmware_passes_every_probe() {
    let (lines, ok, failed, fw) = run(Knobs::default());
    assert_eq!((ok, failed), (12, 0), "{lines:#?}");
    assert_eq!(lines.len(), 13);
    assert_eq!(lines.last().unwrap(), "probes: 12 ok, 0 failed");
    assert_eq!(line(&lines, "smccc_version"), "probe smccc_version: ok 1.5");
    assert_eq!(line(&lines, "ffa_version"), "probe ffa_version: ok 1.2");
    assert_eq!(line(&lines, "ffa_id_get"), "probe ffa_id_get: ok 0x0000");
    assert_eq!(line(&lines, "ffa_spm_id_get"), "probe ffa_spm_id_get: ok 0x8000");
    assert_eq!(
        line(&lines, "bad_unknown_ffa_id"),
        "probe bad_unknown_ffa_id: ok 0x840000ff -> FFA_ERROR NOT_SUPPORTED (-1); \
         FFA_FEATURES(0x840000ff) -> FFA_ERROR NOT_SUPPORTED (-1); then FFA_VERSION ok 1.2"
    );
    assert_eq!(
        line(&lines, "bad_partition_info_before_rxtx"),
        "probe bad_partition_info_before_rxtx: ok FFA_ERROR BUSY (-4); then FFA_VERSION ok 1.2"
    );
    assert_eq!(line(&lines, "ffa_rxtx_map"), "probe ffa_rxtx_map: ok rx 0x60100000 tx 0x60101000 1 page(s)");
    assert_eq!(
        line(&lines, "ffa_partition_info_get"),
        "probe ffa_partition_info_get: ok 1 partition(s): 0x8001 d4ff1955-d086-4722-8923-d8bd89eb38b3 \
         (cells 0x5519ffd4 0x224786d0 0xbdd82389 0xb338eb89)"
    );
    assert_eq!(line(&lines, "ffa_direct_req_echo"), "probe ffa_direct_req_echo: ok 0x8001 echoed 5 words");
    assert_eq!(
        line(&lines, "bad_direct_req_missing_partition"),
        "probe bad_direct_req_missing_partition: ok to 0x8123 -> FFA_ERROR INVALID_PARAMETERS (-2); then FFA_VERSION ok 1.2"
    );
    assert_eq!(line(&lines, "rmi_version"), "probe rmi_version: ok 1.0 (lower 1.0, higher 1.0)");
    assert_eq!(line(&lines, "rmi_features"), "probe rmi_features: ok reg0 0x30 (S2SZ 48)");
    assert_eq!(fw.releases.get(), 1, "RX buffer released after partition info");
}

#[test]
fn bad_partition_info_runs_before_rxtx_map() {
    let (_, _, _, fw) = run(Knobs::default());
    let calls = fw.calls.borrow();
    let info = calls.iter().position(|&f| f == 0x8400_0068).unwrap();
    let map = calls.iter().position(|&f| f == 0xC400_0066).unwrap();
    assert!(info < map);
}

#[test]
fn no_el3_is_a_clean_all_ok_report() {
    let (lines, ok, failed, _) = run(Knobs { no_el3: true, ..Default::default() });
    assert_eq!((ok, failed), (12, 0), "{lines:#?}");
    assert_eq!(line(&lines, "smccc_version"), "probe smccc_version: ok no EL3 (NOT_SUPPORTED)");
    assert_eq!(line(&lines, "ffa_version"), "probe ffa_version: ok no SPMC (NOT_SUPPORTED)");
    assert_eq!(line(&lines, "ffa_direct_req_echo"), "probe ffa_direct_req_echo: ok no SPMC (NOT_SUPPORTED)");
    assert_eq!(line(&lines, "bad_unknown_ffa_id"), "probe bad_unknown_ffa_id: ok no SPMC (NOT_SUPPORTED)");
    assert_eq!(line(&lines, "rmi_version"), "probe rmi_version: ok no RMM (NOT_SUPPORTED)");
    assert_eq!(line(&lines, "rmi_features"), "probe rmi_features: ok no RMM (NOT_SUPPORTED)");
}

#[test]
fn missing_rmm_under_tfa_fails() {
    let (lines, ok, failed, _) = run(Knobs { no_rmm: true, ..Default::default() });
    assert_eq!((ok, failed), (10, 2));
    assert_eq!(line(&lines, "rmi_version"), "probe rmi_version: FAIL SMCCC NOT_SUPPORTED");
}

#[test]
fn spmd_rejecting_unknown_id_is_reported_as_such() {
    let (lines, _, failed, _) = run(Knobs { spmd_rejects_unknown: true, ..Default::default() });
    assert_eq!(failed, 0);
    assert_eq!(
        line(&lines, "bad_unknown_ffa_id"),
        "probe bad_unknown_ffa_id: ok 0x840000ff -> SMCCC NOT_SUPPORTED (rejected before the SPMC); \
         FFA_FEATURES(0x840000ff) -> FFA_ERROR NOT_SUPPORTED (-1); then FFA_VERSION ok 1.2"
    );
}

#[test]
fn wrong_error_code_before_rxtx_fails() {
    let (lines, _, failed, _) =
        run(Knobs { info_before_rxtx: Some(Some(FfaError::InvalidParameters)), ..Default::default() });
    assert_eq!(failed, 1);
    assert_eq!(
        line(&lines, "bad_partition_info_before_rxtx"),
        "probe bad_partition_info_before_rxtx: FAIL FFA_ERROR INVALID_PARAMETERS (-2) (expected FFA_ERROR BUSY)"
    );
}

#[test]
fn partition_info_without_buffer_succeeding_fails_and_releases() {
    let (lines, _, failed, fw) = run(Knobs { info_before_rxtx: Some(None), ..Default::default() });
    assert_eq!(failed, 1, "{lines:#?}");
    assert!(line(&lines, "bad_partition_info_before_rxtx").contains("FAIL succeeded with 1 partition(s)"));
    // Released once there and once after the real query, which still works.
    assert_eq!(fw.releases.get(), 2);
    assert!(line(&lines, "ffa_partition_info_get").contains(": ok 1 partition(s)"));
}

#[test]
fn firmware_dying_after_an_error_fails_the_follow_up() {
    let (lines, _, failed, _) = run(Knobs { dies_after_error: true, ..Default::default() });
    assert!(failed >= 1);
    // The first call after the error (FFA_FEATURES) already sees the garbage.
    let l = line(&lines, "bad_unknown_ffa_id");
    assert!(l.contains("FAIL") && l.contains("FFA_FEATURES"), "{l}");
    // Later FF-A probes report the garbage instead of hanging or panicking.
    assert!(line(&lines, "ffa_rxtx_map").contains("FAIL unexpected reply x0=0x1234"));
}

#[test]
fn bad_descriptor_size_fails_but_releases_rx() {
    let (lines, _, failed, fw) = run(Knobs { desc_size: Some(8), ..Default::default() });
    assert_eq!(failed, 1);
    assert_eq!(line(&lines, "ffa_partition_info_get"), "probe ffa_partition_info_get: FAIL descriptor size 8 (expected 24)");
    assert_eq!(fw.releases.get(), 1);
}

#[test]
fn absurd_partition_count_fails_without_panic() {
    for count in [0, 171, 1000, u32::MAX] {
        let (lines, _, _, fw) = run(Knobs { count: Some(count), ..Default::default() });
        assert!(line(&lines, "ffa_partition_info_get").contains("FAIL"), "{count}");
        assert_eq!(fw.releases.get(), 1);
        // Discovery failed: the echo probe falls back to the default id.
        assert!(line(&lines, "ffa_direct_req_echo").contains("ok 0x8001"));
    }
}

#[test]
fn corrupted_echo_fails() {
    let (lines, _, failed, _) = run(Knobs { echo_corrupts: true, ..Default::default() });
    assert_eq!(failed, 1);
    assert!(line(&lines, "ffa_direct_req_echo").starts_with("probe ffa_direct_req_echo: FAIL 0x8001 answered"));
}

#[test]
fn missing_partition_answering_fails() {
    let (lines, _, failed, _) = run(Knobs { missing_partition_answers: true, ..Default::default() });
    assert_eq!(failed, 1);
    assert!(line(&lines, "bad_direct_req_missing_partition").contains("FAIL to 0x8123 -> a direct response"));
}

#[test]
fn wrong_versions_and_ids_fail() {
    let (lines, _, _, _) = run(Knobs { ffa_version: Some(0x0002_0000), ..Default::default() });
    assert_eq!(line(&lines, "ffa_version"), "probe ffa_version: FAIL 2.0 (major must be 1)");
    let (lines, _, _, _) = run(Knobs { ffa_version: Some(0x8000_0001), ..Default::default() });
    assert!(line(&lines, "ffa_version").contains("FAIL unexpected reply x0=0x80000001"));
    let (lines, _, _, _) = run(Knobs { ffa_version: Some(0xffff_ffff), ..Default::default() });
    assert_eq!(line(&lines, "ffa_version"), "probe ffa_version: FAIL SMCCC NOT_SUPPORTED");
    let (lines, _, _, _) = run(Knobs { own_id: Some(1), ..Default::default() });
    assert!(line(&lines, "ffa_id_get").starts_with("probe ffa_id_get: FAIL 0x0001"));
}

#[test]
fn older_ffa_version_is_used_for_decoding() {
    // An SPMC at 1.1 is compatible: the probes continue with 1.1 encodings.
    let (lines, _, _, _) = run(Knobs { ffa_version: Some(0x0001_0001), ..Default::default() });
    assert_eq!(line(&lines, "ffa_version"), "probe ffa_version: ok 1.1");
    assert!(line(&lines, "ffa_partition_info_get").contains("ok 1 partition(s)"));
}

#[test]
fn rmi_errors_are_reported() {
    let (lines, _, _, _) = run(Knobs { rmi_status: Some(1), ..Default::default() });
    assert_eq!(
        line(&lines, "rmi_version"),
        "probe rmi_version: FAIL RMI_ERROR_INPUT lower 1.0 higher 1.0 (expected RMI_SUCCESS with 1.0)"
    );
    let (lines, _, _, _) = run(Knobs { rmi_features_status: Some(0x101), ..Default::default() });
    assert_eq!(line(&lines, "rmi_features"), "probe rmi_features: FAIL RMI_ERROR_INPUT (x0=0x101)");
}
