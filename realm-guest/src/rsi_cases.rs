//! The RSI bad-input cases realm-guest runs when the Host asks (host call 5,
//! ns-hyp's `quadrant.rsi-tests`): every RSI 1.0 command (DEN0137 RMM 1.0,
//! chapter B5) called with inputs its failure conditions name, each
//! expecting the spec's status, and the Realm carrying on after each.
//!
//! Plain data (one row per call), so the table itself is checked on the host.
//! The address rules the rows rely on, per command (the failure conditions of
//! DEN0137's RSI command descriptions; TF-RMM's `runtime/rsi/` checks the same):
//! - RSI_REALM_CONFIG(addr): RSI_ERROR_INPUT unless `addr` is granule aligned
//!   and a protected IPA of the Realm whose RIPAS is RAM (our rmm also refuses
//!   a RAM IPA the Host has not mapped rather than exiting to the Host).
//! - RSI_IPA_STATE_SET(base, top, ripas, flags) and RSI_IPA_STATE_GET(base,
//!   top): RSI_ERROR_INPUT unless both are granule aligned, `base < top`,
//!   and [base, top) lies in the protected IPA range; SET also needs `ripas`
//!   EMPTY or RAM.  A refused SET makes no REC exit.
//! - RSI_HOST_CALL(addr): RSI_ERROR_INPUT unless `addr` is aligned to the
//!   RsiHostCall size (0x100) and a protected IPA with RIPAS RAM.  A refused
//!   call makes no REC exit.
//! - RSI_MEASUREMENT_READ(index): RSI_ERROR_INPUT if `index > 4`.
//! - RSI_MEASUREMENT_EXTEND(index, size, ...): RSI_ERROR_INPUT if `index` is
//!   0 (the RIM) or `> 4`, or `size > 64`.
//! - RSI_ATTESTATION_TOKEN_CONTINUE(addr, offset, size): RSI_ERROR_INPUT
//!   for `addr` as RSI_REALM_CONFIG's, `offset >= 4096` or
//!   `offset + size > 4096`; RSI_ERROR_STATE with no token in progress.
//! - RSI_VERSION(req): RSI_ERROR_INPUT for a version we do not implement,
//!   with lower = higher = 1.0.
//! - PSCI_CPU_ON(target, entry, context) (DEN0137's PSCI_CPU_ON): PSCI
//!   INVALID_PARAMETERS if `target` is not the MPIDR of a REC of the Realm,
//!   ALREADY_ON for the caller itself, INVALID_ADDRESS for an `entry` outside
//!   the protected IPA range (host-tested in rmm only: with one REC every such
//!   call has a second failure, and the order is not ours to pick);
//!   PSCI_AFFINITY_INFO(target, level): INVALID_PARAMETERS for `level != 0`
//!   or no such REC, ON (0) for the caller.  All answered without the Host.
//! - Any other function id in the RSI range (0xC4000190..=0xC40001AF) or an
//!   SMC32 form: SMCCC NOT_SUPPORTED (-1).

use shared::abi::rsi;

/// One call and the status it must return in x0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: &'static str,
    pub fid: u32,
    pub args: [u64; 4],
    pub expect: u64,
}

/// Where the Realm's pages are (IPAs), and its IPA width.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub ipa_width: u64,
    /// A RAM page of ours the calls must not write.
    pub probe: u64,
    /// Our RsiHostCall buffer (0x100 aligned).
    pub host_call: u64,
    /// The first granule of the token buffer.
    pub token: u64,
}

pub const SUCCESS: u64 = rsi::RsiStatus::Success as u64;
pub const INPUT: u64 = rsi::RsiStatus::ErrorInput as u64;
pub const STATE: u64 = rsi::RsiStatus::ErrorState as u64;
/// SMCCC NOT_SUPPORTED (-1), also PSCI's.
pub const NOT_SUPPORTED: u64 = u64::MAX;
/// PSCI INVALID_PARAMETERS (-2) and ALREADY_ON (-4) as register values.
pub const PSCI_INVALID_PARAMETERS: u64 = -2i64 as u64;
pub const PSCI_ALREADY_ON: u64 = -4i64 as u64;

/// A protected IPA whose RIPAS is EMPTY: in the Realm's RTTs (the same
/// 1 GiB as the image) but never given to the Realm.
pub const EMPTY_IPA: u64 = 0x6000_0000;

/// How a status reads in a case line.
pub fn status_name(s: u64) -> &'static str {
    match s {
        SUCCESS => "SUCCESS",
        INPUT => "RSI_ERROR_INPUT",
        STATE => "RSI_ERROR_STATE",
        3 => "RSI_INCOMPLETE",
        4 => "RSI_ERROR_UNKNOWN",
        NOT_SUPPORTED => "NOT_SUPPORTED",
        PSCI_INVALID_PARAMETERS => "PSCI_INVALID_PARAMETERS",
        PSCI_ALREADY_ON => "PSCI_ALREADY_ON",
        _ => "?",
    }
}

pub const CASES: usize = 49;

/// The table: every row must return `expect` and leave the Realm running.
/// RSI_ATTESTATION_TOKEN_CONTINUE rows run with a token in progress (so
/// the only error is the input's).
pub fn cases(l: &Layout) -> [Case; CASES] {
    let prot_end = 1u64 << (l.ipa_width - 1);
    let outside = 1u64 << l.ipa_width;
    let far = !0xfffu64;
    let p = l.probe;
    let c = |name, fid, args: &[u64], expect| {
        let mut a = [0u64; 4];
        a[..args.len()].copy_from_slice(args);
        Case { name, fid, args: a, expect }
    };
    use rsi::*;
    [
        c("version_2_0", RSI_VERSION, &[2 << 16], INPUT),
        c("measurement_read_index_5", RSI_MEASUREMENT_READ, &[5], INPUT),
        c("measurement_read_index_max", RSI_MEASUREMENT_READ, &[u64::MAX], INPUT),
        c("measurement_extend_rim", RSI_MEASUREMENT_EXTEND, &[0, 8, 0x55], INPUT),
        c("measurement_extend_index_5", RSI_MEASUREMENT_EXTEND, &[5, 8, 0x55], INPUT),
        c("measurement_extend_size_65", RSI_MEASUREMENT_EXTEND, &[1, 65, 0x55], INPUT),
        c("measurement_extend_size_max", RSI_MEASUREMENT_EXTEND, &[1, u64::MAX, 0x55], INPUT),
        c("token_continue_unaligned", RSI_ATTESTATION_TOKEN_CONTINUE, &[l.token + 8, 0, 0x100], INPUT),
        c("token_continue_protected_empty", RSI_ATTESTATION_TOKEN_CONTINUE, &[EMPTY_IPA, 0, 0x100], INPUT),
        c("token_continue_unprotected", RSI_ATTESTATION_TOKEN_CONTINUE, &[prot_end | l.token, 0, 0x100], INPUT),
        c("token_continue_outside_ipa_space", RSI_ATTESTATION_TOKEN_CONTINUE, &[outside, 0, 0x100], INPUT),
        c("token_continue_offset_4096", RSI_ATTESTATION_TOKEN_CONTINUE, &[l.token, 0x1000, 0], INPUT),
        c("token_continue_offset_plus_size_4097", RSI_ATTESTATION_TOKEN_CONTINUE, &[l.token, 0x800, 0x801], INPUT),
        c("token_continue_size_overflows", RSI_ATTESTATION_TOKEN_CONTINUE, &[l.token, 8, u64::MAX], INPUT),
        c("realm_config_unaligned", RSI_REALM_CONFIG, &[p + 8], INPUT),
        c("realm_config_protected_empty", RSI_REALM_CONFIG, &[EMPTY_IPA], INPUT),
        c("realm_config_unprotected", RSI_REALM_CONFIG, &[prot_end | p], INPUT),
        c("realm_config_outside_ipa_space", RSI_REALM_CONFIG, &[outside], INPUT),
        c("realm_config_far", RSI_REALM_CONFIG, &[far], INPUT),
        c("ipa_state_set_unaligned_base", RSI_IPA_STATE_SET, &[p + 8, p + 0x1000, RSI_RAM, 0], INPUT),
        c("ipa_state_set_unaligned_top", RSI_IPA_STATE_SET, &[p, p + 0x800, RSI_RAM, 0], INPUT),
        c("ipa_state_set_empty_range", RSI_IPA_STATE_SET, &[p, p, RSI_RAM, 0], INPUT),
        c("ipa_state_set_top_below_base", RSI_IPA_STATE_SET, &[p + 0x1000, p, RSI_RAM, 0], INPUT),
        c("ipa_state_set_crosses_protected_end", RSI_IPA_STATE_SET, &[prot_end - 0x1000, prot_end + 0x1000, RSI_RAM, 0], INPUT),
        c("ipa_state_set_unprotected", RSI_IPA_STATE_SET, &[prot_end, prot_end + 0x1000, RSI_RAM, 0], INPUT),
        c("ipa_state_set_outside_ipa_space", RSI_IPA_STATE_SET, &[outside, outside + 0x1000, RSI_EMPTY, 0], INPUT),
        c("ipa_state_set_ripas_destroyed", RSI_IPA_STATE_SET, &[p, p + 0x1000, RSI_DESTROYED, 0], INPUT),
        c("ipa_state_set_ripas_3", RSI_IPA_STATE_SET, &[p, p + 0x1000, 3, 0], INPUT),
        c("ipa_state_get_unaligned_base", RSI_IPA_STATE_GET, &[p + 8, p + 0x1000], INPUT),
        c("ipa_state_get_unaligned_top", RSI_IPA_STATE_GET, &[p, p + 0x800], INPUT),
        c("ipa_state_get_empty_range", RSI_IPA_STATE_GET, &[p, p], INPUT),
        c("ipa_state_get_top_below_base", RSI_IPA_STATE_GET, &[p + 0x1000, p], INPUT),
        c("ipa_state_get_unprotected", RSI_IPA_STATE_GET, &[prot_end, prot_end + 0x1000], INPUT),
        c("ipa_state_get_crosses_protected_end", RSI_IPA_STATE_GET, &[prot_end - 0x1000, prot_end + 0x1000], INPUT),
        c("ipa_state_get_outside_ipa_space", RSI_IPA_STATE_GET, &[outside, outside + 0x1000], INPUT),
        c("host_call_unaligned_8", RSI_HOST_CALL, &[l.host_call + 8], INPUT),
        c("host_call_unaligned_128", RSI_HOST_CALL, &[l.host_call + 0x80], INPUT),
        c("host_call_protected_empty", RSI_HOST_CALL, &[EMPTY_IPA], INPUT),
        c("host_call_unprotected", RSI_HOST_CALL, &[prot_end | l.host_call], INPUT),
        c("host_call_outside_ipa_space", RSI_HOST_CALL, &[outside], INPUT),
        c("psci_cpu_on_itself", shared::abi::psci::PSCI_CPU_ON_64, &[0, p, 0], PSCI_ALREADY_ON),
        c("psci_cpu_on_no_such_rec", shared::abi::psci::PSCI_CPU_ON_64, &[1, p, 0], PSCI_INVALID_PARAMETERS),
        c("psci_cpu_on_not_an_mpidr", shared::abi::psci::PSCI_CPU_ON_64, &[1 << 40, p, 0], PSCI_INVALID_PARAMETERS),
        c("psci_affinity_info_level_1", shared::abi::psci::PSCI_AFFINITY_INFO_64, &[0, 1], PSCI_INVALID_PARAMETERS),
        c("psci_affinity_info_no_such_rec", shared::abi::psci::PSCI_AFFINITY_INFO_64, &[1, 0], PSCI_INVALID_PARAMETERS),
        c("psci_affinity_info_itself_is_on", shared::abi::psci::PSCI_AFFINITY_INFO_64, &[0, 0], SUCCESS),
        c("psci_unknown_fid_0x8400001f", 0x8400_001f, &[], NOT_SUPPORTED),
        c("unknown_rsi_fid_0xc400019a", 0xC400_019A, &[], NOT_SUPPORTED),
        c("rsi_version_smc32_0x84000190", 0x8400_0190, &[rsi::RSI_ABI_VERSION], NOT_SUPPORTED),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout { ipa_width: 39, probe: 0x4000_a000, host_call: 0x4000_b100, token: 0x4000_c000 }
    }

    #[test]
    fn every_rsi_command_has_a_failure_case() {
        let t = cases(&layout());
        for fid in [rsi::RSI_VERSION, rsi::RSI_MEASUREMENT_READ, rsi::RSI_MEASUREMENT_EXTEND, rsi::RSI_ATTESTATION_TOKEN_CONTINUE, rsi::RSI_REALM_CONFIG, rsi::RSI_IPA_STATE_SET, rsi::RSI_IPA_STATE_GET, rsi::RSI_HOST_CALL] {
            assert!(t.iter().any(|c| c.fid == fid && c.expect != SUCCESS), "{fid:#x}");
        }
        // RSI_FEATURES has no failure condition; TOKEN_INIT's is tested in sequence (run()).
        let mut names: Vec<_> = t.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CASES, "case names are unique");
        assert!(t.iter().all(|c| status_name(c.expect) != "?"));
    }

    #[test]
    fn addresses_are_what_the_names_say() {
        let l = layout();
        let prot_end = 1u64 << 38;
        for c in cases(&l) {
            let a = c.args[0];
            if c.name.ends_with("_unprotected") {
                assert!(a & prot_end != 0 && a < 1 << 39, "{}", c.name);
            }
            if c.name.ends_with("_outside_ipa_space") {
                assert!(a >= 1 << 39, "{}", c.name);
            }
            if c.name.ends_with("_protected_empty") {
                assert_eq!(a, EMPTY_IPA, "{}", c.name);
                assert!(a < prot_end);
            }
            if c.name.contains("unaligned_8") || c.name.ends_with("_unaligned") {
                assert_ne!(a % 0x100, 0, "{}", c.name);
            }
        }
        // EMPTY_IPA is protected and not one of our pages.
        assert!(EMPTY_IPA < prot_end && ![l.probe, l.token, l.host_call & !0xfff].contains(&EMPTY_IPA));
    }
}
