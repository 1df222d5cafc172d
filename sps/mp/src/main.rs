//! mp: an MP secure partition, one execution context per core.  The primary
//! context registers the secondary entry point (FFA_SECONDARY_EP_REGISTER);
//! the SPMC starts each secondary context on its own core.  Each context does
//! its own work: a per-context request counter, kept in the partition's
//! `mp-scratch` memory region (which only this SP's Stage-2 maps).
//!
//! Requests (x3 = command, DEN0077 direct request payload x3..x7):
//! - `CMD_WORK` (0): answers `[context index, requests served by this context, x5, x6, x7]`;
//! - `CMD_FORWARD` (1): sends a 64-bit direct request with `[x5, x6, x7, 0, 0]`
//!   to partition x4 and answers `[0, its x3..x6]`, or `[error code as u64, 0..]`;
//! - `CMD_FORWARD_REQ2` (2): the same with FFA_MSG_SEND_DIRECT_REQ2 (Nil UUID);
//! - `CMD_SPIN` (3): busy work for x4 counter ticks, answers `[context, ticks
//!   spent, x5, x6, x7]`.  Its manifest says `ns-interrupts-action = <2>`
//!   (signalled): an NS interrupt meanwhile preempts it, the Normal world gets
//!   FFA_INTERRUPT and resumes it with FFA_RUN, and the work goes on.
//! - `CMD_MEM` (4): memory a sender shared or lent (x4 = handle, x5 = sender,
//!   x6 = mode, x7 = value). Modes: 0 retrieve RW, read the first u64, write
//!   x7 there, relinquish; 1 retrieve read-only, read, relinquish; 2 retrieve
//!   RW and keep it; 3 relinquish only. Answers `[0, value read, pages of the
//!   first constituent, constituents, NS]` or `[error code as u64, ..]`
//!   (`sp_runtime::memory::command`).
//! - `CMD_MEM_SHARE_TO` (5): shares a page of its scratch region holding x5
//!   with partition x4 (SP to SP), which runs `CMD_MEM` mode 0 writing x5 + 1;
//!   answers `[receiver's status, value it read, value now in the page,
//!   reclaim status, NS]`.
//! - `CMD_MEM_DONATE_TO` (6): donates the third page of its scratch region
//!   (holding x5) to partition x4, which runs `CMD_MEM` mode 2 (keeps it,
//!   writing x5 + 1); then tries to reclaim it, which must fail (a donation
//!   leaves no handle); answers `[receiver's status, value it read, reclaim
//!   error code, 0, 0]`.  The page is no longer mp's afterwards.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use sp_runtime as _;

#[cfg(not(target_os = "none"))]
fn main() {}

pub const CMD_WORK: u64 = 0;
pub const CMD_FORWARD: u64 = 1;
pub const CMD_FORWARD_REQ2: u64 = 2;
pub const CMD_SPIN: u64 = 3;
pub const CMD_MEM: u64 = 4;
pub const CMD_MEM_SHARE_TO: u64 = 5;
pub const CMD_MEM_DONATE_TO: u64 = 6;
/// The `mp-scratch` region of tfa-integration/sp/mp.dts.
pub const SCRATCH: u64 = 0x0e60_0000;

/// One counter per context, in the scratch region (8 bytes each).
pub trait Counters {
    fn bump(&mut self, ctx: usize) -> u64;
}

/// The request handler, with its effects passed in (host-testable).
pub fn handle(
    req: &sp_runtime::DirectRequest,
    ctx: usize,
    counters: &mut dyn Counters,
    send: &mut dyn FnMut(bool, u16, [u64; 5]) -> Result<[u64; 5], i32>,
    spin: &mut dyn FnMut(u64) -> u64,
) -> [u64; 5] {
    let a = req.args;
    match a[0] {
        #[cfg(target_os = "none")]
        CMD_MEM => sp_runtime::memory::command(a[1], a[2] as u16, a[3], a[4]),
        #[cfg(target_os = "none")]
        CMD_MEM_SHARE_TO => share_to(req.dst, a[1] as u16, a[2]),
        #[cfg(target_os = "none")]
        CMD_MEM_DONATE_TO => donate_to(req.dst, a[1] as u16, a[2]),
        CMD_SPIN => [ctx as u64, spin(a[1]), a[2], a[3], a[4]],
        CMD_WORK => [ctx as u64, counters.bump(ctx), a[2], a[3], a[4]],
        CMD_FORWARD | CMD_FORWARD_REQ2 => match send(a[0] == CMD_FORWARD_REQ2, a[1] as u16, [a[2], a[3], a[4], 0, 0]) {
            Ok(r) => [0, r[0], r[1], r[2], r[3]],
            Err(e) => [e as i64 as u64, 0, 0, 0, 0],
        },
        // Unknown command: say so in x3 (all ones) and echo the rest.
        _ => [u64::MAX, a[1], a[2], a[3], a[4]],
    }
}

/// `CMD_MEM_SHARE_TO`: shares the last page of our scratch region (holding
/// `value`) with `receiver`, has it run `CMD_MEM` (mode 0, writing
/// `value + 1`), reads the page back and reclaims it.
#[cfg(target_os = "none")]
fn share_to(id: u16, receiver: u16, value: u64) -> [u64; 5] {
    use sp_runtime::memory;
    let page = SCRATCH + 3 * 0x1000;
    // SAFETY: our own scratch region (RW in our Stage-2 and Stage-1).
    unsafe { core::ptr::write_volatile(page as *mut u64, value) };
    let h = match memory::share(receiver, page, 1) {
        Ok(h) => h,
        Err(e) => return [e as i64 as u64, 1, 0, 0, 0],
    };
    let r = sp_runtime::ffa::direct_req64(id, receiver, [CMD_MEM, h, id as u64, 0, value + 1]);
    // SAFETY: as above; shared (not lent), so we keep our access meanwhile.
    let back = unsafe { core::ptr::read_volatile(page as *const u64) };
    let rec = memory::reclaim(h).map_or_else(|e| e as i64 as u64, |()| 0);
    match r {
        Ok(a) => [a[0], a[1], back, rec, a[4]],
        Err(e) => [e as i64 as u64, 2, 0, 0, 0],
    }
}

/// `CMD_MEM_DONATE_TO` (see the crate docs).
#[cfg(target_os = "none")]
fn donate_to(id: u16, receiver: u16, value: u64) -> [u64; 5] {
    use sp_runtime::memory;
    let page = SCRATCH + 2 * 0x1000;
    // SAFETY: our own scratch region, until we donate it below.
    unsafe { core::ptr::write_volatile(page as *mut u64, value) };
    let h = match memory::donate(receiver, page, 1) {
        Ok(h) => h,
        Err(e) => return [e as i64 as u64, 1, 0, 0, 0],
    };
    let r = sp_runtime::ffa::direct_req64(id, receiver, [CMD_MEM, h, id as u64, 2, value + 1]);
    let rec = memory::reclaim(h).map_or_else(|e| e as i64 as u64, |()| 0);
    match r {
        Ok(a) => [a[0], a[1], rec, 0, 0],
        Err(e) => [e as i64 as u64, 2, 0, 0, 0],
    }
}

#[cfg(target_os = "none")]
struct Scratch;

#[cfg(target_os = "none")]
impl Counters for Scratch {
    fn bump(&mut self, ctx: usize) -> u64 {
        let p = (SCRATCH + 8 * ctx as u64) as *mut u64;
        // SAFETY: the mp-scratch region is mapped RW by our Stage-2 and
        // identity-mapped Normal memory by the runtime's Stage-1; each context
        // only touches its own slot.
        unsafe {
            let v = core::ptr::read_volatile(p) + 1;
            core::ptr::write_volatile(p, v);
            v
        }
    }
}

#[cfg(target_os = "none")]
unsafe extern "C" {
    fn sp_runtime_secondary_entry();
}

#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn sp_main(secondary: u64) -> ! {
    use sp_runtime::ffa;
    let ctx = ffa::context_index();
    let id = ffa::id_get();
    // SAFETY: our own counter slot; zero it on (re)start of this context.
    unsafe { core::ptr::write_volatile((SCRATCH + 8 * ctx as u64) as *mut u64, 0) };
    if secondary == 0 {
        let r = ffa::secondary_ep_register(sp_runtime_secondary_entry as *const () as u64);
        if let Some(e) = ffa::error_code(&r) {
            sp_runtime::println!("FFA_SECONDARY_EP_REGISTER failed: {}", e);
        }
        sp_runtime::println!("ready (primary context {})", ctx);
    } else {
        sp_runtime::println!("context {} ready", ctx);
    }
    let mut send = |req2: bool, dst: u16, args: [u64; 5]| {
        if req2 { ffa::direct_req2(id, dst, [0, 0], args) } else { ffa::direct_req64(id, dst, args) }
    };
    let mut spin = |ticks| sp_runtime::interrupts::spin(ticks, |_| false).0;
    sp_runtime::run(|req| handle(req, ctx, &mut Scratch, &mut send, &mut spin))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem([u64; 4]);
    impl Counters for Mem {
        fn bump(&mut self, ctx: usize) -> u64 {
            self.0[ctx] += 1;
            self.0[ctx]
        }
    }

    fn req(args: [u64; 5]) -> sp_runtime::DirectRequest {
        let mut r = [0u64; 18];
        r[0] = 0xC400_006F;
        r[1] = 0x0000_8002;
        r[3..8].copy_from_slice(&args);
        sp_runtime::DirectRequest::from_regs(&r).unwrap()
    }

    #[test]
    fn per_context_work_and_forwarding() {
        let mut m = Mem([0; 4]);
        let mut send = |req2: bool, dst: u16, a: [u64; 5]| if dst == 0x8001 && !req2 { Ok(a) } else { Err(-4) };
        assert_eq!(handle(&req([CMD_WORK, 0, 7, 8, 9]), 2, &mut m, &mut send, &mut |t| t), [2, 1, 7, 8, 9]);
        assert_eq!(handle(&req([CMD_WORK, 0, 7, 8, 9]), 2, &mut m, &mut send, &mut |t| t)[1], 2);
        assert_eq!(handle(&req([CMD_WORK, 0, 0, 0, 0]), 1, &mut m, &mut send, &mut |t| t)[1], 1);
        assert_eq!(handle(&req([CMD_FORWARD, 0x8001, 5, 6, 7]), 0, &mut m, &mut send, &mut |t| t), [0, 5, 6, 7, 0]);
        assert_eq!(handle(&req([CMD_FORWARD, 0x8002, 5, 6, 7]), 0, &mut m, &mut send, &mut |t| t)[0], -4i64 as u64);
        assert_eq!(handle(&req([CMD_SPIN, 500, 1, 2, 3]), 3, &mut m, &mut send, &mut |t| t + 1), [3, 501, 1, 2, 3]);
    }
}
