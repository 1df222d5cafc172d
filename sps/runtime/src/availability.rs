//! VM availability messages from the SP side (DEN0077 v1.2, framework
//! messages, "VM availability messages"): the hypervisor's "VM created" and
//! "VM destroyed" direct requests to an SP whose manifest subscribes to them
//! (`vm-availability-messages`).  The runtime answers each with the
//! framework response (type + 1) and keeps a log per VM id, which a
//! partition may report ([`seen`]).

use crate::ffa::Regs;
use shared::abi::ffa::framework::{FLAG, TYPE_MASK, VM_CREATED_REQ, VM_DESTROYED_REQ};
use shared::abi::ffa::{fid, pack_endpoints, unpack_endpoints};
use core::sync::atomic::{AtomicU64, Ordering};

/// VM ids logged: 0..LOGGED (a hypervisor's first VMs).
pub const LOGGED: usize = 16;

/// Per VM id: messages "created", "destroyed", and the last handle.
static CREATED: [AtomicU64; LOGGED] = [const { AtomicU64::new(0) }; LOGGED];
static DESTROYED: [AtomicU64; LOGGED] = [const { AtomicU64::new(0) }; LOGGED];
static HANDLE: [AtomicU64; LOGGED] = [const { AtomicU64::new(0) }; LOGGED];

/// If `r` is a VM availability message (FFA_MSG_SEND_DIRECT_REQ_32/64 with
/// w2 = framework flag | 4 or 6; w3/w4 the handle, w5[15:0] the VM id),
/// logs it and returns the response to send.
pub fn answer(r: &Regs) -> Option<Regs> {
    let resp = match r[0] as u32 {
        fid::FFA_MSG_SEND_DIRECT_REQ_32 => fid::FFA_MSG_SEND_DIRECT_RESP_32,
        fid::FFA_MSG_SEND_DIRECT_REQ_64 => fid::FFA_MSG_SEND_DIRECT_RESP_64,
        _ => return None,
    };
    let w2 = r[2] & 0xffff_ffff;
    let msg = w2 & TYPE_MASK;
    if w2 & FLAG == 0 || !(msg == VM_CREATED_REQ || msg == VM_DESTROYED_REQ) {
        return None;
    }
    let vm = (r[5] & 0xffff) as usize;
    if vm < LOGGED {
        let count = if msg == VM_CREATED_REQ { &CREATED[vm] } else { &DESTROYED[vm] };
        count.fetch_add(1, Ordering::Relaxed);
        HANDLE[vm].store((r[3] & 0xffff_ffff) | (r[4] & 0xffff_ffff) << 32, Ordering::Relaxed);
    }
    let (src, dst) = unpack_endpoints(r[1]);
    let mut out = [0; 18];
    out[0] = resp as u64;
    out[1] = pack_endpoints(dst, src);
    out[2] = FLAG | (msg + 1);
    Some(out)
}

/// What was logged for VM `vm`: (created, destroyed, last handle).
pub fn seen(vm: usize) -> (u64, u64, u64) {
    if vm >= LOGGED {
        return (0, 0, 0);
    }
    (CREATED[vm].load(Ordering::Relaxed), DESTROYED[vm].load(Ordering::Relaxed), HANDLE[vm].load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_logs_vm_availability_only() {
        let mut r = [0u64; 18];
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64;
        r[1] = pack_endpoints(0, 0x8002);
        r[2] = FLAG | VM_CREATED_REQ;
        r[3] = 1 << 16 | 3;
        r[5] = 3;
        let a = answer(&r).unwrap();
        assert_eq!((a[0] as u32, a[1], a[2]), (fid::FFA_MSG_SEND_DIRECT_RESP_32, pack_endpoints(0x8002, 0), FLAG | 5));
        assert_eq!(seen(3), (1, 0, 1 << 16 | 3));
        r[2] = FLAG | VM_DESTROYED_REQ;
        assert_eq!(answer(&r).unwrap()[2], FLAG | 7);
        assert_eq!(seen(3).1, 1);
        // Other framework messages, plain requests, REQ2: not ours.
        r[2] = FLAG | 8;
        assert!(answer(&r).is_none());
        r[2] = 4;
        assert!(answer(&r).is_none());
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
        r[2] = FLAG | VM_CREATED_REQ;
        assert!(answer(&r).is_none());
        // A VM id past the log is answered, not logged.
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64;
        r[5] = 0x40;
        assert_eq!(answer(&r).unwrap()[0] as u32, fid::FFA_MSG_SEND_DIRECT_RESP_64);
        assert_eq!(seen(0x40), (0, 0, 0));
    }
}
