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
//! - notifications and indirect messaging (`spmc_notifications`,
//!   `spmc_indirect_messaging`; its manifest has `notification-support` and
//!   indirect messaging):
//!   - `CMD_FFA` (16): makes FF-A call x4 with w1 = x5, w2 = x6, w3/w4 = the
//!     low/high halves of x7 (FFA_NOTIFICATION_BIND/UNBIND/SET/GET,
//!     FFA_FEATURES, FFA_RX_RELEASE, FFA_MSG_SEND2...) and answers `[x0,
//!     w2 | w3 << 32, w4 | w5 << 32, w6, w7]` of its result;
//!   - `CMD_MAP` (17): maps its RX/TX pair (FFA_RXTX_MAP_64): `[x0, w2, ..]`;
//!   - `CMD_READ` (18): reads the indirect message in its RX buffer, then
//!     FFA_RX_RELEASE: `[x0 of RX_RELEASE, sender << 16 | receiver, size,
//!     payload bytes 0..8, 8..16]`;
//!   - `CMD_SEND` (19): FFA_MSG_SEND2 (w2 = x7) of 16 bytes `[x5, x6]` to
//!     endpoint x4 (an SP, the Normal world's 0 or a VM whose RX/TX pair the
//!     hypervisor forwarded): `[x0, w2, ..]`;
//!   - `CMD_LAST_RUN` (20): what this context did when the scheduler last ran
//!     it with FFA_RUN (it calls FFA_NOTIFICATION_GET for its vCPU):
//!     `[times run, from VMs, from SPs, SPM framework, 0]`.
//! - `CMD_VM_SEEN` (21): the VM availability messages the hypervisor sent it
//!   about VM x4 (its manifest subscribes to both kinds; the runtime answers
//!   them, `sp_runtime::availability`): `[created, destroyed, last handle, 0, 0]`.
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
pub const CMD_FFA: u64 = 16;
pub const CMD_MAP: u64 = 17;
pub const CMD_READ: u64 = 18;
pub const CMD_SEND: u64 = 19;
pub const CMD_LAST_RUN: u64 = 20;
pub const CMD_VM_SEEN: u64 = 21;
/// Per context, in `mp-scratch`: [times run, from VMs, from SPs, framework]
/// of the last FFA_RUN by the scheduler.
pub const RUN_LOG: u64 = SCRATCH + 0x800;

/// When the scheduler runs context `ctx` (FFA_RUN): take its notifications
/// and log them in `RUN_LOG`.
#[cfg(target_os = "none")]
fn on_run(id: u16, ctx: usize) {
    use sp_runtime::messaging::{GET_SP, GET_SPM, GET_VM, call4, fid};
    let r = call4(fid::FFA_NOTIFICATION_GET, [(ctx as u64) << 16 | id as u64, GET_SP | GET_VM | GET_SPM, 0, 0]);
    let slot = (RUN_LOG + 32 * ctx as u64) as *mut u64;
    // SAFETY: mp-scratch is ours (see `Scratch`); this context's own 32 bytes.
    unsafe {
        let n = core::ptr::read_volatile(slot) + 1;
        core::ptr::write_volatile(slot, n);
        core::ptr::write_volatile(slot.add(1), r[4] & 0xffff_ffff | r[5] << 32);
        core::ptr::write_volatile(slot.add(2), r[2] & 0xffff_ffff | r[3] << 32);
        core::ptr::write_volatile(slot.add(3), r[6]);
    }
}

/// `CMD_LAST_RUN`'s answer for context `ctx`, and how many Notification
/// Pending Interrupts mp took so far.
#[cfg(target_os = "none")]
fn last_run(ctx: usize) -> [u64; 5] {
    let slot = (RUN_LOG + 32 * ctx as u64) as *const u64;
    let npi = sp_runtime::interrupts::npi_taken() as u64;
    // SAFETY: as in `on_run`.
    unsafe { [core::ptr::read_volatile(slot), core::ptr::read_volatile(slot.add(1)), core::ptr::read_volatile(slot.add(2)), core::ptr::read_volatile(slot.add(3)), npi] }
}

/// The notification and indirect messaging commands (16..=19) of SP `id`;
/// None for any other command.
#[cfg(target_os = "none")]
fn messaging(id: u16, a: [u64; 5]) -> Option<[u64; 5]> {
    use sp_runtime::messaging::{BUFFERS, HEADER, call4, fid, header, parse_header};
    let words = |r: &[u64; 18]| [r[0], r[2] & 0xffff_ffff | r[3] << 32, r[4] & 0xffff_ffff | r[5] << 32, r[6], r[7]];
    Some(match a[0] {
        CMD_FFA => words(&call4(a[1] as u32, [a[2], a[3], a[4] & 0xffff_ffff, a[4] >> 32])),
        CMD_MAP => {
            let r = BUFFERS.map();
            [r[0], r[2], 0, 0, 0]
        }
        CMD_READ => {
            let mut buf = [0u8; HEADER + 16];
            BUFFERS.read_rx(&mut buf);
            let (sender, receiver, offset, size) = parse_header(&buf).unwrap_or((0, 0, HEADER, 0));
            let word = |at: usize| buf.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
            let (p0, p1) = if offset == HEADER { (word(HEADER), word(HEADER + 8)) } else { (0, 0) };
            let r = call4(fid::FFA_RX_RELEASE, [0; 4]);
            [r[0], (sender as u64) << 16 | receiver as u64, size as u64, p0, p1]
        }
        CMD_SEND => {
            BUFFERS.write_tx(0, &header(id, a[1] as u16, 16));
            BUFFERS.write_tx(HEADER, &a[2].to_le_bytes());
            BUFFERS.write_tx(HEADER + 8, &a[3].to_le_bytes());
            let r = call4(fid::FFA_MSG_SEND2, [0, a[4], 0, 0]);
            [r[0], r[2], 0, 0, 0]
        }
        CMD_VM_SEEN => {
            let (created, destroyed, handle) = sp_runtime::availability::seen(a[1] as usize);
            [created, destroyed, handle, 0, 0]
        }
        _ => return None,
    })
}
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
    // SAFETY: this context's own run log slot, zeroed on (re)start.
    unsafe { core::ptr::write_bytes((RUN_LOG + 32 * ctx as u64) as *mut u64, 0, 4) };
    sp_runtime::run_with_hooks(
        |req| match req.args[0] {
            CMD_LAST_RUN => last_run(ctx),
            _ => messaging(id, req.args).unwrap_or_else(|| handle(req, ctx, &mut Scratch, &mut send, &mut spin)),
        },
        |i| sp_runtime::println!("virtual interrupt {} not handled", i),
        || on_run(id, ctx),
    )
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
