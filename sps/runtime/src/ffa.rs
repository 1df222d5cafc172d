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

/// A direct request as the SP receives it (DEN0077 v1.2 §15.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectRequest {
    pub src: u16,
    pub dst: u16,
    pub is64: bool,
    /// x3..x7 (w3..w7 for the 32-bit form).
    pub args: [u64; 5],
}

impl DirectRequest {
    pub fn from_regs(r: &Regs) -> Option<Self> {
        let is64 = match r[0] as u32 {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 => false,
            fid::FFA_MSG_SEND_DIRECT_REQ_64 => true,
            _ => return None,
        };
        // Framework messages (w2 bit 31) are not for the partition's handler.
        if r[2] & abi::framework::FLAG != 0 {
            return None;
        }
        let (src, dst) = abi::unpack_endpoints(r[1]);
        let mut args = [0; 5];
        args.copy_from_slice(&r[3..8]);
        if !is64 {
            args.iter_mut().for_each(|a| *a &= 0xffff_ffff);
        }
        Some(Self { src, dst, is64, args })
    }

    /// The direct response carrying `args` back to the sender, same width.
    pub fn response(&self, args: [u64; 5]) -> Regs {
        let mut r = [0; 18];
        r[0] = if self.is64 { fid::FFA_MSG_SEND_DIRECT_RESP_64 } else { fid::FFA_MSG_SEND_DIRECT_RESP_32 } as u64;
        r[1] = abi::pack_endpoints(self.dst, self.src);
        r[3..8].copy_from_slice(&args);
        if !self.is64 {
            r[3..8].iter_mut().for_each(|a| *a &= 0xffff_ffff);
        }
        r
    }
}

fn msg_wait() -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_MSG_WAIT as u64;
    r
}

/// The partition's message loop: `FFA_MSG_WAIT` (end of init / ready for the
/// next message), then for each direct request call `handler` and send its
/// result as the direct response, which returns with the next request.
pub fn run(mut handler: impl FnMut(&DirectRequest) -> [u64; 5]) -> ! {
    let mut r = call(&msg_wait());
    loop {
        r = match DirectRequest::from_regs(&r) {
            Some(req) => call(&req.response(handler(&req))),
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
}
