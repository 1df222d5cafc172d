//! SMC/HVC calls out of an image, per SMCCC v1.2+ (DEN0028 §2.6): up to 17
//! argument and 18 result registers.  The conduit is a value, so code that
//! makes calls can be tested on the host with a fake.

/// Result registers x0..x17 of a call.
pub type SmcResult = [u64; 18];

/// How a call leaves this image.
pub trait Conduit {
    fn call(&self, fid: u32, args: [u64; 17]) -> SmcResult;
}

/// `smc #0`: to EL3 (or to our own EL2 trap handler, from a guest).
#[derive(Clone, Copy, Debug, Default)]
pub struct Smc;

/// `hvc #0`: to the hypervisor.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hvc;

#[cfg(target_arch = "aarch64")]
impl Conduit for Smc {
    fn call(&self, fid: u32, args: [u64; 17]) -> SmcResult {
        smccc::smc64(fid, args)
    }
}

#[cfg(target_arch = "aarch64")]
impl Conduit for Hvc {
    fn call(&self, fid: u32, args: [u64; 17]) -> SmcResult {
        smccc::hvc64(fid, args)
    }
}

/// Builds the argument array from a short list (x1, x2, ...), rest zero.
pub fn args(list: &[u64]) -> [u64; 17] {
    let mut a = [0u64; 17];
    for (dst, src) in a.iter_mut().zip(list) {
        *dst = *src;
    }
    a
}

/// Convenience: `smc` with only the first few argument registers.
#[cfg(target_arch = "aarch64")]
pub fn smc(fid: u32, list: &[u64]) -> SmcResult {
    Smc.call(fid, args(list))
}

/// Convenience: `hvc` with only the first few argument registers.
#[cfg(target_arch = "aarch64")]
pub fn hvc(fid: u32, list: &[u64]) -> SmcResult {
    Hvc.call(fid, args(list))
}

#[cfg(test)]
mod tests {
    #[test]
    fn args_pads_with_zero() {
        let a = super::args(&[1, 2, 3]);
        assert_eq!(&a[..4], &[1, 2, 3, 0]);
        assert_eq!(a.len(), 17);
    }
}
