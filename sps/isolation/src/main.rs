//! isolation: a secure partition that tries to break out.  On `CMD_READ`
//! (x3 = 1) it reads the 8 bytes at the physical address in x4 (another SP's
//! memory, or the SPMC's): its Stage-2 does not map them, so the access must
//! fault to the SPMC, which marks this partition aborted.  Any other command
//! is a ping answered with the payload (to show it is alive before).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use sp_runtime as _;

#[cfg(not(target_os = "none"))]
fn main() {}

pub const CMD_PING: u64 = 0;
pub const CMD_READ: u64 = 1;
/// Busy work for x4 counter ticks: `[0, ticks spent, ..]`.  Its manifest says
/// `ns-interrupts-action = <0>` (queued): an NS interrupt meanwhile waits.
pub const CMD_SPIN: u64 = 2;
/// Memory shared or lent to us: `sp_runtime::memory::command` (x4 handle,
/// x5 sender, x6 mode, x7 value), as sps/mp's `CMD_MEM`.
pub const CMD_MEM: u64 = 4;
/// `hostile_sp_storm` (issue J): x4 seed, x5 calls (at most
/// [`MAX_STORM_CALLS`]): fires that many seeded random calls at the SPMC
/// (`sp_runtime::storm`), then answers `[0, calls, FFA_SUCCESS answers,
/// FFA_ERROR answers, other answers]`.
pub const CMD_STORM: u64 = 5;
pub const MAX_STORM_CALLS: u64 = 100_000;

/// What a hostile SP aims at: the SPMC, the other SPs and mp's scratch
/// (Secure PAS), the SPMC manifest copy and the GPTs, Normal-world memory,
/// the Realm PAS, MMIO, flash, beyond RAM.  Not our own package (0x0e500000):
/// lending our own code away would only end our own run.
pub const STORM_TARGETS: [u64; 14] = [
    0x0e10_0000, 0x0e30_0000, 0x0e40_0000, 0x0e60_0000, 0x0e70_0000, 0x0eef_b000, 0x0eef_c000,
    0x4000_0000, 0xa000_0000, 0x4010_0000, 0x0800_0000, 0x0900_0000, 0x0000_0000, 0x1_0000_0000,
];

/// The handler; `read` performs the (forbidden) access.
pub fn handle(req: &sp_runtime::DirectRequest, read: &mut dyn FnMut(u64) -> u64, spin: &mut dyn FnMut(u64) -> u64) -> [u64; 5] {
    let a = req.args;
    match a[0] {
        CMD_SPIN => [0, spin(a[1]), 0, 0, 0],
        // Reaching the answer means isolation failed: report the value read.
        CMD_READ => [0xbad, read(a[1]), 0, 0, 0],
        #[cfg(target_os = "none")]
        CMD_MEM => sp_runtime::memory::command(a[1], a[2] as u16, a[3], a[4]),
        #[cfg(target_os = "none")]
        CMD_STORM => {
            let c = sp_runtime::storm::fire(a[1], a[2].min(MAX_STORM_CALLS), &STORM_TARGETS);
            [0, c.calls, c.ffa_success, c.ffa_error, c.other]
        }
        _ => a,
    }
}

#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn sp_main(_secondary: u64) -> ! {
    sp_runtime::println!("ready");
    let mut read = |pa: u64| {
        sp_runtime::println!("reading {:#x}", pa);
        // SAFETY: deliberately touching memory we do not own: the point of this SP.
        unsafe { core::ptr::read_volatile(pa as *const u64) }
    };
    let mut spin = |ticks| sp_runtime::interrupts::spin(ticks, |_| false).0;
    sp_runtime::run(|req| handle(req, &mut read, &mut spin))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ping_and_read() {
        let mut r = [0u64; 18];
        r[0] = 0xC400_006F;
        r[3..8].copy_from_slice(&[0, 1, 2, 3, 4]);
        let q = sp_runtime::DirectRequest::from_regs(&r).unwrap();
        assert_eq!(super::handle(&q, &mut |_| 0, &mut |t| t), [0, 1, 2, 3, 4]);
        r[3] = super::CMD_READ;
        let q = sp_runtime::DirectRequest::from_regs(&r).unwrap();
        assert_eq!(super::handle(&q, &mut |pa| pa + 1, &mut |t| t)[..2], [0xbad, 2]);
    }
}
