//! Indirect messages from a VM (DEN0077 v1.2 chapter "Indirect messaging",
//! FFA_MSG_SEND2).  The VM writes an indirect message header and the
//! payload into its TX buffer; ns-hyp copies the message out once
//! (`shared::ffa_indirect` checks the header against that copy, so the
//! guest cannot change it between check and use) and then:
//!
//! - to an SP: puts it into ns-hyp's own TX buffer and calls FFA_MSG_SEND2
//!   with the VM's id as sender (w1 bits 31:16, "the hypervisor names the
//!   sender VM"); the SPMC delivers it and answers;
//! - to another VM: writes it into that VM's RX buffer, gives the buffer to
//!   the receiver (it owns it until FFA_RX_RELEASE) and sets its hypervisor
//!   framework notification "RX buffer full" ([`super::notify`]), which
//!   pends its NPI.  When the SPMC knows the receiver's pair, ns-hyp
//!   acquires the buffer from it first (FFA_RX_ACQUIRE, [`setup::reserve_rx`]).
//!   No RX buffer, or one the receiver still owns: BUSY; a message larger
//!   than its buffer: NO_MEMORY.
//!
//! The sender must be the VM itself, the receiver another endpoint: else
//! INVALID_PARAMETERS.  Messages from SPs to VMs go the other way without
//! ns-hyp: the SPMC writes them into the VM's RX buffer, which ns-hyp
//! forwarded to it ([`super::setup`]), and sets the VM's SPM framework
//! notification; ns-hyp passes the SRI on as the VM's NPI ([`super::notify`]).

use super::{error, notify, setup, success, Guests, Proxy, Regs, Upstream, PAGE};
use shared::abi::ffa::{fid, is_secure_endpoint, FfaError};
use shared::ffa_indirect::{Header, MAX_MESSAGE};

/// FFA_MSG_SEND2 w2: bit 1 delay SRI; the rest MBZ.
const DELAY_SRI: u32 = 1 << 1;

/// The message being passed: one at a time, under this lock (4 KiB is too
/// much for a vCPU's stack).  Lock order: the proxy's memory lock (ns-hyp's
/// TX buffer), then this, then one VM's.
static MESSAGE: spin::Mutex<[u8; MAX_MESSAGE]> = spin::Mutex::new([0; MAX_MESSAGE]);

/// FFA_MSG_SEND2 from VM `k`: w1 bits 31:16 the sender (0 or the VM's own
/// id: a VM at the virtual FF-A instance may leave it 0), bits 15:0 MBZ; w2 flags.
pub fn msg_send2<U: Upstream, M: Guests>(p: &Proxy, k: usize, a: &Regs, up: &U, mem: &M) -> Regs {
    let w1 = a[1] as u32;
    let me = p.vm(k).id;
    let named = (w1 >> 16) as u16;
    if w1 & 0xffff != 0 || (named != 0 && named != me) || a[2] as u32 & !DELAY_SRI != 0 {
        return error(FfaError::InvalidParameters);
    }
    // ns-hyp's TX buffer (for a message to an SP) is the memory lock's.
    let hyp_tx = p.memory.lock();
    let mut msg = MESSAGE.lock();
    let header = {
        let vm = p.vms[k].lock();
        let Some(mb) = vm.mailbox else { return error(FfaError::Denied) };
        let size = (mb.pages * PAGE) as usize;
        let n = size.min(MAX_MESSAGE);
        mem.read(mb.tx_pa, &mut msg[..n]);
        match Header::parse(&msg[..n], size, vm.version) {
            Ok(h) => h,
            Err(e) => return error(e),
        }
    };
    if header.sender != me || header.receiver == me {
        return error(FfaError::InvalidParameters);
    }
    let bytes = &msg[..header.end()];
    if is_secure_endpoint(header.receiver) {
        up.write_hyp_tx(bytes);
        let mut r = [0; 18];
        r[0] = fid::FFA_MSG_SEND2 as u64;
        r[1] = (me as u64) << 16;
        r[2] = a[2] & DELAY_SRI as u64;
        let reply = up.call(&r);
        return match reply[0] as u32 {
            fid::FFA_SUCCESS_32 | fid::FFA_SUCCESS_64 | fid::FFA_ERROR => reply,
            _ => error(FfaError::Aborted),
        };
    }
    let Some(j) = p.vm_by_id(header.receiver) else { return error(FfaError::InvalidParameters) };
    // The receiver's RX buffer, taken from the SPMC first when it knows it
    // (an SP's message unread there: BUSY).
    let (rx_pa, pages) = match setup::reserve_rx(p, j, up) {
        Ok(b) => b,
        Err(e) => return error(e),
    };
    if ((pages * PAGE) as usize) < bytes.len() {
        setup::unreserve(p, j, rx_pa, up);
        return error(FfaError::NoMemory);
    }
    {
        // Written under the receiver's lock, and only into the buffer
        // reserved: an unmap on another CPU meanwhile leaves it alone.
        let vm = p.vms[j].lock();
        if vm.mailbox.is_none_or(|m| m.rx_pa != rx_pa || !m.rx_full) {
            return error(FfaError::Aborted);
        }
        mem.write(rx_pa, bytes);
    }
    // The NPI with no proxy lock held: pending it takes the receiver's VM lock.
    drop(msg);
    drop(hyp_tx);
    notify::rx_buffer_full(p, j, mem);
    success(0, 0)
}
