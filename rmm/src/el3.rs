//! The EL3 services of the rmm-el3-comms-spec "RMM-EL3 Runtime Interface"
//! the RMM uses: RMM_GTSI_DELEGATE / RMM_GTSI_UNDELEGATE change a granule's
//! PAS between Non-secure and Realm in the GPT; RMM_ATTEST_GET_REALM_KEY and
//! RMM_ATTEST_GET_PLAT_TOKEN give the attestation material (docs/rmm.md,
//! "Attestation").  A trait, so the RMI and RSI commands run on the host
//! against a fake.

use alloc::vec::Vec;

pub trait El3: Sync {
    /// Moves granule `pa` to the Realm PAS; EL3's result code (E_RMM_*).
    fn delegate(&self, pa: u64) -> i64;
    /// Moves granule `pa` back to the Non-secure PAS.
    fn undelegate(&self, pa: u64) -> i64;
    /// RMM_ATTEST_GET_REALM_KEY for ECC SECP384R1: the Realm Attestation
    /// Key's bytes as EL3 gives them, or EL3's error (E_RMM_*).
    fn realm_key(&self) -> Result<Vec<u8>, i64>;
    /// RMM_ATTEST_GET_PLAT_TOKEN with `challenge` (every hunk, joined), at
    /// most `max` bytes; EL3's error, or E_RMM_NOMEM past `max`.
    fn platform_token(&self, challenge: &[u8], max: usize) -> Result<Vec<u8>, i64>;
}

/// The real EL3, through the SMC conduit; the attestation calls pass data
/// through the shared buffer (one page, one user at a time).
#[cfg(target_os = "none")]
pub struct Smc {
    shared_buffer: spin::Mutex<usize>,
}

#[cfg(target_os = "none")]
impl Smc {
    pub const fn new() -> Self {
        Self {
            shared_buffer: spin::Mutex::new(0),
        }
    }

    /// The shared buffer EL3 gave at cold boot (mapped read-write, one page).
    pub fn set_shared_buffer(&self, pa: usize) {
        *self.shared_buffer.lock() = pa;
    }
}

#[cfg(target_os = "none")]
const SHARED_BUFFER_SIZE: usize = 0x1000;

#[cfg(target_os = "none")]
impl El3 for Smc {
    fn delegate(&self, pa: u64) -> i64 {
        shared::smccc::smc(shared::abi::rmm_el3::RMM_GTSI_DELEGATE, &[pa])[0] as i64
    }
    fn undelegate(&self, pa: u64) -> i64 {
        shared::smccc::smc(shared::abi::rmm_el3::RMM_GTSI_UNDELEGATE, &[pa])[0] as i64
    }
    fn realm_key(&self) -> Result<Vec<u8>, i64> {
        use shared::abi::rmm_el3::*;
        let buf = self.shared_buffer.lock();
        if *buf == 0 {
            return Err(E_RMM_UNK);
        }
        let r = shared::smccc::smc(
            RMM_ATTEST_GET_REALM_KEY,
            &[
                *buf as u64,
                SHARED_BUFFER_SIZE as u64,
                ATTEST_KEY_CURVE_ECC_SECP384R1,
            ],
        );
        if r[0] as i64 != E_RMM_OK {
            return Err(r[0] as i64);
        }
        let len = r[1] as usize;
        if len > SHARED_BUFFER_SIZE {
            return Err(E_RMM_INVAL);
        }
        Ok(read_shared(*buf, len))
    }
    fn platform_token(&self, challenge: &[u8], max: usize) -> Result<Vec<u8>, i64> {
        use shared::abi::rmm_el3::*;
        let buf = self.shared_buffer.lock();
        if *buf == 0 || challenge.len() > SHARED_BUFFER_SIZE {
            return Err(E_RMM_UNK);
        }
        for (i, b) in challenge.iter().enumerate() {
            // SAFETY: the shared buffer is mapped read-write, one page long,
            // and used only under its lock; `i` < the challenge's length <= a page.
            unsafe { core::ptr::write_volatile((*buf + i) as *mut u8, *b) };
        }
        let mut token = Vec::new();
        let mut c_size = challenge.len() as u64;
        // EL3 may ask us to retry (E_RMM_AGAIN): bounded, so a stuck EL3 is an error, not a hang.
        let mut retries = 0;
        loop {
            let r = shared::smccc::smc(
                RMM_ATTEST_GET_PLAT_TOKEN,
                &[*buf as u64, SHARED_BUFFER_SIZE as u64, c_size],
            );
            match r[0] as i64 {
                E_RMM_OK => {}
                E_RMM_AGAIN if retries < 1000 => {
                    retries += 1;
                    continue;
                }
                e => return Err(e),
            }
            let (hunk, remaining) = (r[1] as usize, r[2] as usize);
            if hunk > SHARED_BUFFER_SIZE
                || token.len() + hunk + remaining > max
                || (hunk == 0 && remaining != 0)
            {
                return Err(E_RMM_NOMEM);
            }
            token.extend_from_slice(&read_shared(*buf, hunk));
            if remaining == 0 {
                return Ok(token);
            }
            c_size = 0;
        }
    }
}

/// Copies `len` (<= a page) bytes out of the shared buffer at `buf`.
#[cfg(target_os = "none")]
fn read_shared(buf: usize, len: usize) -> Vec<u8> {
    (0..len.min(SHARED_BUFFER_SIZE))
        // SAFETY: inside the mapped shared-buffer page; the caller holds its lock.
        .map(|i| unsafe { core::ptr::read_volatile((buf + i) as *const u8) })
        .collect()
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod test_support {
    use super::*;
    use std::sync::Mutex;

    /// Records calls; fails the addresses listed in `refuse`.  Attestation:
    /// `rak` is what RMM_ATTEST_GET_REALM_KEY returns (TF-A qemu's sample
    /// key unless a test changes it), the platform token a fixed stand-in
    /// whose challenge is the one given.
    pub struct FakeEl3 {
        pub calls: Mutex<Vec<(&'static str, u64)>>,
        pub refuse: Mutex<Vec<u64>>,
        pub rak: Mutex<Result<Vec<u8>, i64>>,
        pub platform_error: Mutex<Option<i64>>,
    }

    impl Default for FakeEl3 {
        fn default() -> Self {
            Self {
                calls: Default::default(),
                refuse: Default::default(),
                rak: Mutex::new(Ok(QEMU_SAMPLE_RAK.to_vec())),
                platform_error: Mutex::new(None),
            }
        }
    }

    /// The Realm Attestation Key of TF-A 2.12's qemu platform (docs/rmm.md).
    pub const QEMU_SAMPLE_RAK: [u8; 48] = [
        0x20, 0x11, 0xC7, 0xF0, 0x3C, 0xEE, 0x43, 0x25, 0x17, 0x6E, 0x52, 0x4F, 0x03, 0x3C, 0x0C,
        0xE1, 0xE2, 0x1A, 0x76, 0xE6, 0xC1, 0xA4, 0xF0, 0xB8, 0x39, 0xAA, 0x1D, 0xF6, 0x1E, 0x0E,
        0x8A, 0x5C, 0x8A, 0x05, 0x74, 0x0F, 0x9B, 0x69, 0xEF, 0xA7, 0xEB, 0x1A, 0x41, 0x85, 0xBD,
        0x11, 0x7F, 0x68,
    ];

    /// A stand-in platform token: CBOR map {10: challenge} (not signed).
    pub fn platform_token_for(challenge: &[u8]) -> Vec<u8> {
        let mut t = vec![0xa1, 0x0a, 0x58, challenge.len() as u8];
        t.extend_from_slice(challenge);
        t
    }

    impl El3 for FakeEl3 {
        fn delegate(&self, pa: u64) -> i64 {
            self.calls.lock().unwrap().push(("delegate", pa));
            if self.refuse.lock().unwrap().contains(&pa) {
                shared::abi::rmm_el3::E_RMM_BAD_PAS
            } else {
                0
            }
        }
        fn undelegate(&self, pa: u64) -> i64 {
            self.calls.lock().unwrap().push(("undelegate", pa));
            if self.refuse.lock().unwrap().contains(&pa) {
                shared::abi::rmm_el3::E_RMM_BAD_PAS
            } else {
                0
            }
        }
        fn realm_key(&self) -> Result<Vec<u8>, i64> {
            self.calls.lock().unwrap().push(("realm_key", 0));
            self.rak.lock().unwrap().clone()
        }
        fn platform_token(&self, challenge: &[u8], _max: usize) -> Result<Vec<u8>, i64> {
            self.calls
                .lock()
                .unwrap()
                .push(("platform_token", challenge.len() as u64));
            match *self.platform_error.lock().unwrap() {
                Some(e) => Err(e),
                None => Ok(platform_token_for(challenge)),
            }
        }
    }
}
