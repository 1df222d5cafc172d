//! `quadrant.realm-bench`: the cost of one RMI_VERSION (Host → RMMD → rmm →
//! back) and of one REC_ENTER → RSI_HOST_CALL exit round trip (Host → rmm →
//! Realm → rmm → Host), against the null-SMC floor (SMCCC_VERSION, answered
//! by EL3).  Lines as in the other bench mode: `bench cntfrq <hz>`,
//! `bench <name> <iterations> <ticks>` per row, `bench done`.
//!
//! `bench attest_token`: [`TOKEN_ROUNDS`] whole attestation tokens
//! (RSI_ATTESTATION_TOKEN_INIT, then RSI_ATTESTATION_TOKEN_CONTINUE until
//! RSI_SUCCESS), timed by the Realm itself with CNTVCT (the same counter)
//! around its calls and reported by a host call: no Host round trip is in
//! it.  The Realm reads a token before (its `ATTEST` lines), so EL3's key and
//! platform token are already fetched: rows are the steady state.

use super::host::{self, Image, Realm, RunOptions};
use super::rmi::Rmi;
use super::{NsMemory, Pages, Report};
use shared::smccc::Conduit;

pub const ITERATIONS: u32 = 10_000;
/// Host-call rounds: each is a full world switch into the Realm and back.
pub const REC_ROUNDS: u64 = 1_000;
/// Whole attestation tokens the Realm times (each one signs: ECDSA P-384).
pub const TOKEN_ROUNDS: u64 = 10;
const SMCCC_VERSION: u32 = 0x8000_0000;

pub fn run<C: Conduit, M: NsMemory>(c: &C, mem: &M, pages: &mut Pages, image: Image, counter: &dyn Fn() -> u64, cntfrq: u64, out: &mut dyn Report) -> bool {
    let rmi = Rmi::new(c);
    out.line(format_args!("bench cntfrq {}", cntfrq));
    let time = |f: &mut dyn FnMut() -> bool| {
        let mut bad = 0u32;
        // rmm's split images print their share around each row (`shared::split`).
        let _ = rmi.features(shared::split::RMI_MARKER);
        let start = counter();
        for _ in 0..ITERATIONS {
            if !f() {
                bad += 1;
            }
        }
        let t = counter().wrapping_sub(start);
        let _ = rmi.features(shared::split::RMI_MARKER);
        (t, bad)
    };
    let (t, _) = time(&mut || c.call(SMCCC_VERSION, [0; 17])[0] as u32 & (1 << 31) == 0);
    out.line(format_args!("bench smc_floor {} {}", ITERATIONS, t));
    let (t, bad) = time(&mut || rmi.version(shared::abi::rmi::RMI_ABI_VERSION).ok());
    out.line(format_args!("bench rmi_version {} {}", ITERATIONS, t));
    let mut ok = bad == 0;
    if bad != 0 {
        out.line(format_args!("bench rmi_version errors {}", bad));
    }
    let opts = RunOptions { bench_rounds: REC_ROUNDS, token_rounds: TOKEN_ROUNDS, ..RunOptions::default() };
    match Realm::create(&rmi, mem, pages, image, out) {
        Ok(mut realm) => {
            match host::run(&rmi, mem, &realm, opts, counter, out) {
                Ok(s) if s.bench_rounds == REC_ROUNDS => {
                    out.line(format_args!("bench rec_enter_host_call {} {}", REC_ROUNDS, s.bench_ticks));
                    if s.token_rounds == TOKEN_ROUNDS && s.token_ticks != 0 {
                        out.line(format_args!("bench attest_token {} {}", s.token_rounds, s.token_ticks));
                    } else {
                        ok = false;
                        out.line(format_args!("bench attest_token skipped: the Realm reported {} token(s), {} ticks", s.token_rounds, s.token_ticks));
                    }
                }
                Ok(s) => {
                    ok = false;
                    out.line(format_args!("bench rec_enter_host_call skipped: the Realm made {} timed call(s)", s.bench_rounds));
                }
                Err(e) => {
                    ok = false;
                    out.line(format_args!("bench rec_enter_host_call skipped: {}", e));
                }
            }
            if let Err(e) = realm.destroy(&rmi) {
                ok = false;
                out.line(format_args!("bench teardown: {}", e));
            }
        }
        Err(e) => {
            ok = false;
            out.line(format_args!("bench rec_enter_host_call skipped: {}", e));
        }
    }
    out.line(format_args!("bench done"));
    ok
}
