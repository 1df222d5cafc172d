//! `quadrant.realm-bench`: the cost of one RMI_VERSION (Host → RMMD → rmm →
//! back) and of one REC_ENTER → RSI_HOST_CALL exit round trip (Host → rmm →
//! Realm → rmm → Host), against the null-SMC floor (SMCCC_VERSION, answered
//! by EL3).  Lines as in the other bench mode: `bench cntfrq <hz>`,
//! `bench <name> <iterations> <ticks>` per row, `bench done`.

use super::host::{self, Image, Realm, RunOptions};
use super::rmi::Rmi;
use super::{NsMemory, Pages, Report};
use shared::smccc::Conduit;

pub const ITERATIONS: u32 = 10_000;
/// Host-call rounds: each is a full world switch into the Realm and back.
pub const REC_ROUNDS: u64 = 1_000;
const SMCCC_VERSION: u32 = 0x8000_0000;

pub fn run<C: Conduit, M: NsMemory>(c: &C, mem: &M, pages: &mut Pages, image: Image, counter: &dyn Fn() -> u64, cntfrq: u64, out: &mut dyn Report) -> bool {
    let rmi = Rmi::new(c);
    out.line(format_args!("bench cntfrq {}", cntfrq));
    let time = |f: &mut dyn FnMut() -> bool| {
        let mut bad = 0u32;
        let start = counter();
        for _ in 0..ITERATIONS {
            if !f() {
                bad += 1;
            }
        }
        (counter().wrapping_sub(start), bad)
    };
    let (t, _) = time(&mut || c.call(SMCCC_VERSION, [0; 17])[0] as u32 & (1 << 31) == 0);
    out.line(format_args!("bench smc_floor {} {}", ITERATIONS, t));
    let (t, bad) = time(&mut || rmi.version(shared::abi::rmi::RMI_ABI_VERSION).ok());
    out.line(format_args!("bench rmi_version {} {}", ITERATIONS, t));
    let mut ok = bad == 0;
    if bad != 0 {
        out.line(format_args!("bench rmi_version errors {}", bad));
    }
    let opts = RunOptions { isolation: false, bench_rounds: REC_ROUNDS };
    match Realm::create(&rmi, mem, pages, image, out) {
        Ok(mut realm) => {
            match host::run(&rmi, mem, &realm, opts, counter, out) {
                Ok(s) if s.bench_rounds == REC_ROUNDS => {
                    out.line(format_args!("bench rec_enter_host_call {} {}", REC_ROUNDS, s.bench_ticks));
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
