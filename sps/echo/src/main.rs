//! echo: the simplest secure partition.  It says `ready` at init, then answers
//! every direct request with the same five payload registers (x3..x7), so a
//! caller can check a full round trip through the SPMC.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use sp_runtime as _;

#[cfg(not(target_os = "none"))]
fn main() {}

/// The echo handler: the response payload is the request payload.
pub fn echo(req: &sp_runtime::DirectRequest) -> [u64; 5] {
    req.args
}

#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn sp_main(_secondary: u64) -> ! {
    sp_runtime::println!("ready");
    sp_runtime::run(echo)
}

#[cfg(test)]
mod tests {
    #[test]
    fn echoes_payload() {
        let mut r = [0u64; 18];
        r[0] = 0xC400_006F;
        r[1] = 0x0000_8001;
        r[3..8].copy_from_slice(&[1, 2, 3, 4, 5]);
        let req = sp_runtime::DirectRequest::from_regs(&r).unwrap();
        let resp = req.response(super::echo(&req));
        assert_eq!(&resp[3..8], &[1, 2, 3, 4, 5]);
        assert_eq!(resp[1], 0x8001_0000);
    }
}
