//! Issue A (foundation): all four worlds boot and shake hands.

use super::{Expect, FORBID_ALWAYS, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::qemu::Boot;
use crate::util;
use std::time::Duration;

fn tfa_boot(o: &Outputs) -> XResult<Boot> {
    // The probes and the Stage-2 self-test are in ns-hyp's test flavour.
    Ok(Boot::Tfa { bios: o.test_bios.clone(), dtb: None })
}

fn no_tfa_boot(o: &Outputs) -> XResult<Boot> {
    Ok(Boot::NoTfa { kernel: o.images.join(format!("{}.bin", crate::build::NS_HYP_TEST)), append: None })
}

/// The echo SP's UUID as written in its partition manifest (first cell, as hex),
/// so the test follows the manifest rather than a copy of it.
fn echo_uuid_cells() -> Vec<String> {
    let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/echo.dts")).unwrap_or_default();
    dts.lines()
        .find(|l| l.trim_start().starts_with("uuid"))
        .map(|l| l.split(['<', '>']).nth(1).unwrap_or("").split_whitespace().map(|c| c.trim_start_matches("0x").to_lowercase()).collect())
        .unwrap_or_default()
}

fn four_world_expects() -> Vec<Expect> {
    vec![
        expect("TF-A banner", &["NOTICE:  Booting Trusted Firmware"]),
        expect("TF-A BL31 started", &["NOTICE:  BL31: v2.12"]),
        expect("spmc parsed its manifest", &["[spmc] ", "manifest"]),
        expect("echo SP initialised", &["[echo] ready"]),
        expect("spmc finished init", &["[spmc] ", "init done"]),
        expect("rmm booted", &["[rmm] ", "boot complete"]),
        expect("ns-hyp up under TF-A", &["[ns-hyp] firmware: TF-A"]),
        expect("FFA_VERSION answered", &["[ns-hyp] probe ffa_version: ok"]),
        expect("FFA_VERSION reached spmc", &["[spmc] ", "FFA_VERSION"]),
        expect("FFA_ID_GET answered", &["[ns-hyp] probe ffa_id_get: ok"]),
        expect("RXTX_MAP answered", &["[ns-hyp] probe ffa_rxtx_map: ok"]),
        expect("PARTITION_INFO_GET lists echo", &["[ns-hyp] probe ffa_partition_info_get: ok"]),
        expect("PARTITION_INFO_GET reached spmc", &["[spmc] ", "PARTITION_INFO_GET"]),
        expect("direct request round trip to echo", &["[ns-hyp] probe ffa_direct_req_echo: ok"]),
        expect("direct request reached spmc", &["[spmc] ", "DIRECT_REQ"]),
        expect("RMI_VERSION answered", &["[ns-hyp] probe rmi_version: ok"]),
        expect("RMI_VERSION reached rmm", &["[rmm] ", "RMI_VERSION"]),
        expect("no probe failed", &["[ns-hyp] probes: ", " 0 failed"]),
        stage2_selftest(),
    ]
}

/// ns-hyp's boot-time check of live Stage-2 changes (guest/selftest.rs): a
/// block split by break-before-make, a page remapped, no stale TLB entry.
fn stage2_selftest() -> Expect {
    expect("Stage-2 break-before-make works on this CPU", &["[ns-hyp] self-test stage2_break_before_make: ok"])
}

fn spmc_bad_input_expects() -> Vec<Expect> {
    vec![
        expect("unknown FF-A id refused", &["[ns-hyp] probe bad_unknown_ffa_id: ok", "then FFA_VERSION ok"]),
        expect("spmc itself says the id is not supported", &["[spmc] FEATURES from NS", "error NOT_SUPPORTED"]),
        expect("spmc refused PARTITION_INFO_GET without an RX buffer", &["[spmc] PARTITION_INFO_GET: error BUSY"]),
        expect("spmc refused the missing partition", &["[spmc] DIRECT_REQ", "0x8123: error INVALID_PARAMETERS"]),
        expect("direct request to a missing partition refused", &["[ns-hyp] probe bad_direct_req_missing_partition: ok", "INVALID_PARAMETERS", "then FFA_VERSION ok"]),
        expect("PARTITION_INFO_GET before RXTX_MAP refused", &["[ns-hyp] probe bad_partition_info_before_rxtx: ok", "BUSY", "then FFA_VERSION ok"]),
        expect("valid calls still answered after the errors", &["[ns-hyp] probe ffa_direct_req_echo: ok"]),
        expect("no probe failed", &["[ns-hyp] probes: ", " 0 failed"]),
    ]
}

fn direct_kernel_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp knows there is no EL3 firmware", &["[ns-hyp] firmware: none"]),
        expect("FFA_VERSION reports no SPMC", &["[ns-hyp] probe ffa_version: ok", "no SPMC"]),
        expect("RMI_VERSION reports no RMM", &["[ns-hyp] probe rmi_version: ok", "no RMM"]),
        expect("no probe failed", &["[ns-hyp] probes: ", " 0 failed"]),
        stage2_selftest(),
    ]
}

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest { name: "four_world_boot", boot: tfa_boot, timeout: Duration::from_secs(120), expects: four_world_expects, extra: Some(echo_uuid_listed), forbid: FORBID_ALWAYS },
        IntegrationTest { name: "ns_hyp_direct_kernel", boot: no_tfa_boot, timeout: Duration::from_secs(60), expects: direct_kernel_expects, extra: None, forbid: FORBID_ALWAYS },
        IntegrationTest { name: "spmc_bad_input", boot: tfa_boot, timeout: Duration::from_secs(120), expects: spmc_bad_input_expects, extra: None, forbid: FORBID_ALWAYS },
    ]
}


/// The partition list ns-hyp printed includes echo's UUID from its manifest.
fn echo_uuid_listed(output: &str) -> Vec<String> {
    let cells = echo_uuid_cells();
    let line = output.lines().find(|l| l.contains("probe ffa_partition_info_get: ok"));
    match (cells.first(), line) {
        (Some(c), Some(l)) if l.to_lowercase().replace('-', "").contains(c.as_str()) => vec![],
        (c, l) => vec![format!("partition info does not show echo's UUID (first cell {c:?}): {l:?}")],
    }
}
