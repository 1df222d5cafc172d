//! VM availability messages (DEN0077 v1.2, framework messages, "VM
//! availability messages"): the hypervisor tells each SP that subscribed
//! (partition properties bit 6 "VM created", bit 7 "VM destroyed", from its
//! manifest's `vm-availability-messages`) when one of its VMs starts and when
//! it is gone, so that the SP can set up or drop per-VM state.
//!
//! Each message is an FFA_MSG_SEND_DIRECT_REQ_32 from ns-hyp (id 0) to the
//! SP: w2 = framework flag | type (4 created, 6 destroyed), w3/w4 a handle
//! for this life of the VM, w5[15:0] the VM's id.  The SP answers with the
//! framework response (type + 1) and w3 its status (0: success).  An SP
//! preempted meanwhile (FFA_INTERRUPT) or yielding is run again until it
//! answers, and one whose context on this PE is BUSY (finishing a VM's
//! request) is asked again, each a bounded number of times.
//!
//! OP-TEE built with CFG_NS_VIRTUALIZATION is such an SP: it keeps one
//! guest partition per VM id (w5) and refuses calls from a VM it was not
//! told about.
//!
//! The subscribers come from partition discovery at ns-hyp's start.

use super::{Regs, Upstream};
use shared::abi::ffa::framework::{FLAG, VM_CREATED_REQ, VM_DESTROYED_REQ};
use shared::abi::ffa::{fid, pack_endpoints, unpack_endpoints};

/// Partition properties bits 6 and 7 (DEN0077 v1.2, partition information descriptor).
pub const PROP_VM_CREATED: u32 = 1 << 6;
pub const PROP_VM_DESTROYED: u32 = 1 << 7;

/// SPs remembered as subscribers at most.
pub const MAX_SUBSCRIBERS: usize = 16;

/// FFA_RUNs given to an SP for one message at most, and how many times a
/// BUSY one is asked again.
const MAX_RUNS: usize = 64;
const BUSY_RETRIES: usize = 1000;

/// Which message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    Created,
    Destroyed,
}

impl Availability {
    fn request(self) -> u64 {
        match self {
            Availability::Created => VM_CREATED_REQ,
            Availability::Destroyed => VM_DESTROYED_REQ,
        }
    }
    fn property(self) -> u32 {
        match self {
            Availability::Created => PROP_VM_CREATED,
            Availability::Destroyed => PROP_VM_DESTROYED,
        }
    }
}

/// The SPs that subscribed, with the messages they want.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Subscribers {
    sps: [(u16, u32); MAX_SUBSCRIBERS],
    n: usize,
}

impl Subscribers {
    pub const fn new() -> Self {
        Subscribers { sps: [(0, 0); MAX_SUBSCRIBERS], n: 0 }
    }

    /// From `count` partition information descriptors of `size` bytes in
    /// `rx` (ns-hyp's RX buffer after FFA_PARTITION_INFO_GET): the secure
    /// partitions with bit 6 or 7 set.
    pub fn from_descriptors(rx: &[u8], count: usize, size: usize) -> Self {
        let mut s = Self::new();
        if size < 8 {
            return s;
        }
        for d in rx.chunks_exact(size).take(count) {
            let id = u16::from_le_bytes([d[0], d[1]]);
            let props = u32::from_le_bytes([d[4], d[5], d[6], d[7]]) & (PROP_VM_CREATED | PROP_VM_DESTROYED);
            if shared::abi::ffa::is_secure_endpoint(id) && props != 0 && s.n < MAX_SUBSCRIBERS {
                s.sps[s.n] = (id, props);
                s.n += 1;
            }
        }
        s
    }

    /// The SPs that want `what`.
    pub fn wanting(&self, what: Availability) -> impl Iterator<Item = u16> + '_ {
        self.sps[..self.n].iter().filter(move |(_, p)| p & what.property() != 0).map(|(id, _)| *id)
    }
}

/// The message about VM `vm_id` (this life's `handle`) to SP `sp`.
pub fn message(what: Availability, sp: u16, vm_id: u16, handle: u64) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64;
    r[1] = pack_endpoints(super::HYPERVISOR_ID, sp);
    r[2] = FLAG | what.request();
    r[3] = handle & 0xffff_ffff;
    r[4] = handle >> 32;
    r[5] = vm_id as u64;
    r
}

/// Whether `reply` is `sp`'s framework response to `what` for ns-hyp, with
/// status 0 (w3).
fn is_answer(reply: &Regs, what: Availability, sp: u16) -> bool {
    matches!(reply[0] as u32, fid::FFA_MSG_SEND_DIRECT_RESP_32 | fid::FFA_MSG_SEND_DIRECT_RESP_64)
        && unpack_endpoints(reply[1]) == (sp, super::HYPERVISOR_ID)
        && reply[2] & 0xffff_ffff == FLAG | (what.request() + 1)
        && reply[3] as u32 == 0
}

fn is_busy(r: &Regs) -> bool {
    r[0] as u32 == fid::FFA_ERROR && r[2] as u32 as i32 == i32::from(shared::abi::ffa::FfaError::Busy)
}

/// Sends `what` about VM `vm_id` to every SP that wants it; returns how
/// many answered, and how many were sent.
pub fn send<U: Upstream>(up: &U, subs: &Subscribers, what: Availability, vm_id: u16, handle: u64) -> (usize, usize) {
    let (mut answered, mut sent) = (0, 0);
    for sp in subs.wanting(what) {
        sent += 1;
        let request = message(what, sp, vm_id, handle);
        let mut reply = up.call(&request);
        for _ in 0..BUSY_RETRIES {
            if !is_busy(&reply) {
                break;
            }
            core::hint::spin_loop();
            reply = up.call(&request);
        }
        let mut runs = 0;
        while matches!(reply[0] as u32, fid::FFA_INTERRUPT | fid::FFA_YIELD) && runs < MAX_RUNS {
            let mut run = [0; 18];
            run[0] = fid::FFA_RUN as u64;
            run[1] = reply[1] & 0xffff_ffff;
            reply = up.call(&run);
            runs += 1;
        }
        if is_answer(&reply, what, sp) {
            answered += 1;
        } else {
            log::warn!("VM availability message {:?} for {:#06x} to {:#06x}: answered {:#x} w2 {:#x}", what, vm_id, sp, reply[0], reply[2]);
        }
    }
    (answered, sent)
}
