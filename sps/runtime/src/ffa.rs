//! FF-A calls of an SP (DEN0077 v1.2), made with `smc #0` (SMCCC v1.2, x0..x17).

use shared::abi::ffa::{self as abi, fid};

pub type Regs = [u64; 18];

/// Makes one FF-A call: `regs[0]` is the function id.
#[cfg(target_arch = "aarch64")]
pub fn call(regs: &Regs) -> Regs {
    use shared::smccc::Conduit;
    let mut args = [0u64; 17];
    args.copy_from_slice(&regs[1..]);
    shared::smccc::Smc.call(regs[0] as u32, args)
}

#[cfg(not(target_arch = "aarch64"))]
pub fn call(_regs: &Regs) -> Regs {
    unimplemented!("FF-A calls only exist on the target")
}

/// Which ABI a direct request came with (its response must use the matching one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Req32,
    Req64,
    /// FFA_MSG_SEND_DIRECT_REQ2 (DEN0077 v1.2); the UUID words of x2/x3.
    Req2 { uuid: [u64; 2] },
}

/// A direct request as the SP receives it (DEN0077 v1.2, FFA_MSG_SEND_DIRECT_REQ and FFA_MSG_SEND_DIRECT_REQ2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectRequest {
    pub src: u16,
    pub dst: u16,
    pub is64: bool,
    pub kind: Kind,
    /// x3..x7 (w3..w7 for the 32-bit form; x4..x8 for REQ2).
    pub args: [u64; 5],
}

impl DirectRequest {
    pub fn from_regs(r: &Regs) -> Option<Self> {
        let kind = match r[0] as u32 {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 => Kind::Req32,
            fid::FFA_MSG_SEND_DIRECT_REQ_64 => Kind::Req64,
            fid::FFA_MSG_SEND_DIRECT_REQ2 => Kind::Req2 { uuid: [r[2], r[3]] },
            _ => return None,
        };
        // Framework messages (w2 bit 31) are not for the partition's handler.
        if kind != (Kind::Req2 { uuid: [r[2], r[3]] }) && r[2] & abi::framework::FLAG != 0 {
            return None;
        }
        let (src, dst) = abi::unpack_endpoints(r[1]);
        let mut args = [0; 5];
        let first = if matches!(kind, Kind::Req2 { .. }) { 4 } else { 3 };
        args.copy_from_slice(&r[first..first + 5]);
        if kind == Kind::Req32 {
            args.iter_mut().for_each(|a| *a &= 0xffff_ffff);
        }
        Some(Self { src, dst, is64: kind != Kind::Req32, kind, args })
    }

    /// The direct response carrying `args` back to the sender, same ABI and width.
    pub fn response(&self, args: [u64; 5]) -> Regs {
        let mut r = [0; 18];
        r[1] = abi::pack_endpoints(self.dst, self.src);
        match self.kind {
            Kind::Req32 => {
                r[0] = fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64;
                r[3..8].copy_from_slice(&args);
                r[3..8].iter_mut().for_each(|a| *a &= 0xffff_ffff);
            }
            Kind::Req64 => {
                r[0] = fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64;
                r[3..8].copy_from_slice(&args);
            }
            Kind::Req2 { .. } => {
                r[0] = fid::FFA_MSG_SEND_DIRECT_RESP2 as u64;
                r[4..9].copy_from_slice(&args);
            }
        }
        r
    }
}

fn msg_wait() -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_MSG_WAIT as u64;
    r
}

/// FFA_ERROR's code (w2) if `r` is an FFA_ERROR.
pub fn error_code(r: &Regs) -> Option<i32> {
    (r[0] as u32 == fid::FFA_ERROR).then_some(r[2] as u32 as i32)
}

/// FFA_ID_GET: this partition's id.
pub fn id_get() -> u16 {
    let mut r = [0; 18];
    r[0] = fid::FFA_ID_GET as u64;
    call(&r)[2] as u16
}

/// FFA_SECONDARY_EP_REGISTER_64 (DEN0077 v1.2): where the SPMC starts
/// this MP partition's secondary contexts.
pub fn secondary_ep_register(entry: u64) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_SECONDARY_EP_REGISTER_64 as u64;
    r[1] = entry;
    call(&r)
}

/// FFA_MSG_SEND_DIRECT_REQ_64 from `src` to `dst`: the response's x3..x7, or the error code.
pub fn direct_req64(src: u16, dst: u16, args: [u64; 5]) -> Result<[u64; 5], i32> {
    let mut r = [0; 18];
    r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64;
    r[1] = abi::pack_endpoints(src, dst);
    r[3..8].copy_from_slice(&args);
    let a = call(&r);
    if let Some(e) = error_code(&a) {
        return Err(e);
    }
    let mut out = [0; 5];
    out.copy_from_slice(&a[3..8]);
    Ok(out)
}

/// FFA_MSG_SEND_DIRECT_REQ2 from `src` to `dst` for service `uuid` (x2/x3 words).
pub fn direct_req2(src: u16, dst: u16, uuid: [u64; 2], args: [u64; 5]) -> Result<[u64; 5], i32> {
    let mut r = [0; 18];
    r[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
    r[1] = abi::pack_endpoints(src, dst);
    r[2] = uuid[0];
    r[3] = uuid[1];
    r[4..9].copy_from_slice(&args);
    let a = call(&r);
    if let Some(e) = error_code(&a) {
        return Err(e);
    }
    let mut out = [0; 5];
    out.copy_from_slice(&a[4..9]);
    Ok(out)
}

/// This execution context's index: MPIDR_EL1.Aff0 as the SPMC presents it.
#[cfg(target_arch = "aarch64")]
pub fn context_index() -> usize {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    (v & 0xff) as usize
}

#[cfg(not(target_arch = "aarch64"))]
pub fn context_index() -> usize {
    0
}

/// The partition's message loop: `FFA_MSG_WAIT` (end of init / ready for the
/// next message), then for each direct request call `handler` and send its
/// result as the direct response, which returns with the next request.
pub fn run(handler: impl FnMut(&DirectRequest) -> [u64; 5]) -> ! {
    run_with_interrupts(handler, |id| {
        crate::println!("virtual interrupt {} not handled", id);
    })
}

/// [`run`], and when the SPMC resumes the waiting SP with FFA_INTERRUPT
/// (DEN0077 v1.2, interrupt management: a virtual interrupt for it), each pending interrupt id
/// (HF_INTERRUPT_GET) goes to `on_interrupt`, is ended
/// (HF_INTERRUPT_DEACTIVATE), and the SP waits again (FFA_MSG_WAIT).
pub fn run_with_interrupts(handler: impl FnMut(&DirectRequest) -> [u64; 5], on_interrupt: impl FnMut(u32)) -> ! {
    run_with_hooks(handler, on_interrupt, || {
        crate::println!("run by the scheduler: nothing to do");
    })
}

/// [`run_with_interrupts`], and when the Normal world's scheduler runs the
/// waiting SP with FFA_RUN (DEN0077 v1.2: after the Schedule Receiver
/// Interrupt, for its pending notifications or indirect message), `on_run`,
/// then FFA_MSG_WAIT again.
pub fn run_with_hooks(mut handler: impl FnMut(&DirectRequest) -> [u64; 5], mut on_interrupt: impl FnMut(u32), mut on_run: impl FnMut()) -> ! {
    let mut r = call(&msg_wait());
    loop {
        // The hypervisor's VM availability messages are answered here, not by the handler.
        if let Some(resp) = crate::availability::answer(&r) {
            r = call(&resp);
            continue;
        }
        r = match DirectRequest::from_regs(&r) {
            Some(req) => call(&req.response(handler(&req))),
            None if r[0] as u32 == fid::FFA_INTERRUPT || r[0] as u32 == fid::FFA_RUN => {
                // The Notification Pending Interrupt means: take the
                // notifications, as a run by the scheduler does; it comes
                // with FFA_RUN, or with FFA_INTERRUPT beside another one.
                let mut notified = r[0] as u32 == fid::FFA_RUN;
                while let Some(id) = crate::interrupts::interrupt_get() {
                    if id == crate::interrupts::NOTIFICATION_PENDING_INTID {
                        crate::interrupts::note_npi();
                        notified = true;
                        continue;
                    }
                    on_interrupt(id);
                    crate::interrupts::interrupt_deactivate(id);
                }
                if notified {
                    on_run();
                }
                call(&msg_wait())
            }
            None => {
                crate::println!("unexpected message {:#x}", r[0]);
                call(&msg_wait())
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_to_response() {
        let mut r = [0; 18];
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64;
        r[1] = 0x0000_8001;
        r[3] = 0xffff_0000_0000_0007;
        let q = DirectRequest::from_regs(&r).unwrap();
        assert_eq!((q.src, q.dst, q.args[0]), (0, 0x8001, 7));
        let resp = q.response(q.args);
        assert_eq!(&resp[..4], &[fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64, 0x8001_0000, 0, 7]);
    }

    #[test]
    fn framework_and_other_messages_are_not_requests() {
        let mut r = [0; 18];
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64;
        r[2] = 1 << 31;
        assert!(DirectRequest::from_regs(&r).is_none());
        r[0] = fid::FFA_ERROR as u64;
        assert!(DirectRequest::from_regs(&r).is_none());
    }

    #[test]
    fn req2_round_trip() {
        let mut r = [0; 18];
        r[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
        r[1] = 0x8002_8001;
        r[2] = 0xffff_ffff_ffff_ffff; // UUID words, not a framework flag
        r[4..9].copy_from_slice(&[1, 2, 3, 4, 5]);
        let q = DirectRequest::from_regs(&r).unwrap();
        assert_eq!(q.args, [1, 2, 3, 4, 5]);
        let resp = q.response(q.args);
        assert_eq!(resp[0], fid::FFA_MSG_SEND_DIRECT_RESP2 as u64);
        assert_eq!(resp[1], 0x8001_8002);
        assert_eq!(&resp[4..9], &[1, 2, 3, 4, 5]);
    }
}
