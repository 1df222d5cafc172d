//! Indirect messaging (DEN0077 v1.2 chapter "Indirect messaging"):
//! FFA_MSG_SEND2.  The sender writes an indirect message header and the
//! payload into its TX buffer; spmc checks the header, copies header and
//! payload into the receiver's RX buffer, gives that buffer to the receiver
//! (RX/TX buffer ownership: the receiver owns it until FFA_RX_RELEASE) and
//! sets the receiver's SPM framework notification "RX buffer full"
//! ([`super::notifications`]), which owes the Normal world the SRI.  The
//! receiver may be a VM of the hypervisor once the hypervisor forwarded its
//! RX/TX pair: then the SRI makes the hypervisor look (FFA_NOTIFICATION_INFO_GET
//! names the VM) and pass the VM its notification.
//!
//! Locks: the sender's mailbox while its TX buffer is read into a local
//! copy, then the receiver's while its RX buffer is written, then the
//! receiver's notification bitmaps: each a leaf lock, one at a time.

use super::calls::Call;
use super::setup::rxtx::Mailbox;
use super::{Caller, NS_ENDPOINT_ID, Platform, Regs, Spmc, error, success};
use crate::partition::Uuid;
use shared::ffa_indirect::{Header, MAX_MESSAGE};
use crate::partition::manifest::MSG_INDIRECT;
use shared::abi::ffa::{self as ffa, FfaError, Interface};

impl Spmc {
    /// FFA_MSG_SEND2 from `caller` on PE `cpu`; `sender` is the caller's
    /// own id, or from the Normal world the VM the hypervisor sends for.
    fn msg_send2(&self, caller: Caller, sender: u16, cpu: usize, platform: &mut dyn Platform) -> Regs {
        if let Caller::Sp(i) = caller
            && self.part(i).manifest.messaging_method & MSG_INDIRECT == 0
        {
            return error(FfaError::Denied);
        }
        // The sender's TX buffer, copied under its lock (it cannot be
        // unmapped meanwhile).
        let mut buf = [0u8; MAX_MESSAGE];
        let header = {
            let mb = self.mailbox(caller).lock();
            let Some(mb) = *mb else { return error(FfaError::Denied) };
            let n = (mb.size as usize).min(MAX_MESSAGE);
            platform.read(mb.tx, &mut buf[..n]);
            match Header::parse(&buf[..n], mb.size as usize, self.version_of(caller)) {
                Ok(h) => h,
                Err(e) => return error(e),
            }
        };
        if header.sender != sender || header.receiver == sender {
            return error(FfaError::InvalidParameters);
        }
        // The receiver: an SP, or (from an SP) the Normal world's endpoint 0
        // or a VM of the hypervisor whose RX buffer it forwarded.
        let receiver = if header.receiver == NS_ENDPOINT_ID && caller != Caller::Ns {
            Receiver::Endpoint(Caller::Ns)
        } else if ffa::is_ns_endpoint(header.receiver) && caller != Caller::Ns {
            Receiver::Vm(header.receiver)
        } else if ffa::is_secure_endpoint(header.receiver) {
            let Some(r) = self.find(header.receiver) else { return error(FfaError::InvalidParameters) };
            let p = self.part(r);
            if !Uuid(header.uuid).is_nil() && !p.manifest.uuids().contains(&Uuid(header.uuid)) {
                return error(FfaError::InvalidParameters);
            }
            if p.manifest.messaging_method & MSG_INDIRECT == 0 {
                return error(FfaError::Denied);
            }
            if p.is_aborted() {
                return error(FfaError::Aborted);
            }
            Receiver::Endpoint(Caller::Sp(r))
        } else {
            return error(FfaError::InvalidParameters);
        };
        let bytes = &buf[..header.end()];
        let delivered = match receiver {
            Receiver::Endpoint(r) => {
                let mut mb = self.mailbox(r).lock();
                match &mut *mb {
                    // No RX buffer: try again later.
                    None => Err(FfaError::Busy),
                    Some(m) => deliver(m, bytes, platform),
                }
            }
            // A VM without a pair here is no receiver the SPMC knows.
            Receiver::Vm(id) => self.with_vm_mailbox(id, |m| deliver(m, bytes, platform)).unwrap_or(Err(FfaError::InvalidParameters)),
        };
        if let Err(e) = delivered {
            return error(e);
        }
        self.set_framework_notification(header.receiver, super::notifications::FWK_RX_BUFFER_FULL, cpu);
        success(&[])
    }
}

/// Where a message goes.
enum Receiver {
    /// An SP, or the Normal world's endpoint 0: a mailbox of [`Spmc::mailbox`].
    Endpoint(Caller),
    /// A VM of the hypervisor, by id ([`Spmc::with_vm_mailbox`]).
    Vm(u16),
}

/// Writes `bytes` (header and payload) into the RX buffer of `m` and gives
/// it to its owner (RX/TX buffer ownership: the receiver owns it until
/// FFA_RX_RELEASE).  BUSY while the receiver (or, for a VM, the
/// hypervisor) still owns it; NO_MEMORY if the message does not fit.
fn deliver(m: &mut Mailbox, bytes: &[u8], platform: &mut dyn Platform) -> Result<(), FfaError> {
    if m.rx_full {
        return Err(FfaError::Busy);
    }
    if (m.size as usize) < bytes.len() {
        return Err(FfaError::NoMemory);
    }
    platform.write(m.rx, bytes);
    m.rx_full = true;
    Ok(())
}

/// FFA_MSG_SEND2 (w1 bits 31:16 sender VM id, bits 15:0 MBZ; w2 flags:
/// bit 1 delay SRI, the rest MBZ).  From the Normal world the sender VM id
/// is the hypervisor's own (0) or that of the VM whose message it forwards
/// from its own TX buffer (DEN0077 v1.2, FFA_MSG_SEND2: the hypervisor
/// names the sender VM); the header's sender must be that id.  From an SP
/// it MBZ.  Receivers are SPs (from anyone), the Normal world's endpoint 0
/// (from an SP) and, from an SP, a VM of the hypervisor that forwarded its
/// RX/TX pair ([`super::setup::rxtx`]); another VM: INVALID_PARAMETERS.
pub(super) fn ffa_msg_send2(s: &Spmc, c: &Call, platform: &mut dyn Platform) -> Regs {
    let Some(Interface::MsgSend2 { sender_vm_id, .. }) = c.decoded else { return error(FfaError::InvalidParameters) };
    if c.regs[1] as u32 & 0xffff != 0 {
        return error(FfaError::InvalidParameters);
    }
    let sender = match c.caller {
        Caller::Ns if ffa::is_ns_endpoint(sender_vm_id) => sender_vm_id,
        Caller::Sp(_) if sender_vm_id == 0 => s.caller_id(c.caller),
        _ => return error(FfaError::InvalidParameters),
    };
    s.msg_send2(c.caller, sender, c.cpu, platform)
}
