//! The EL3 services granule delegation needs (rmm-el3-comms-spec "RMM-EL3
//! Runtime Interface": RMM_GTSI_DELEGATE / RMM_GTSI_UNDELEGATE change a
//! granule's PAS between Non-secure and Realm in the GPT).  A trait, so the
//! RMI commands run on the host against a fake.

pub trait El3: Sync {
    /// Moves granule `pa` to the Realm PAS; EL3's result code (E_RMM_*).
    fn delegate(&self, pa: u64) -> i64;
    /// Moves granule `pa` back to the Non-secure PAS.
    fn undelegate(&self, pa: u64) -> i64;
}

/// The real EL3, through the SMC conduit.
#[cfg(target_os = "none")]
pub struct Smc;

#[cfg(target_os = "none")]
impl El3 for Smc {
    fn delegate(&self, pa: u64) -> i64 {
        shared::smccc::smc(shared::abi::rmm_el3::RMM_GTSI_DELEGATE, &[pa])[0] as i64
    }
    fn undelegate(&self, pa: u64) -> i64 {
        shared::smccc::smc(shared::abi::rmm_el3::RMM_GTSI_UNDELEGATE, &[pa])[0] as i64
    }
}

#[cfg(test)]
pub mod test_support {
    use super::*;
    use std::sync::Mutex;

    /// Records calls; fails the addresses listed in `refuse`.
    #[derive(Default)]
    pub struct FakeEl3 {
        pub calls: Mutex<Vec<(&'static str, u64)>>,
        pub refuse: Mutex<Vec<u64>>,
    }

    impl El3 for FakeEl3 {
        fn delegate(&self, pa: u64) -> i64 {
            self.calls.lock().unwrap().push(("delegate", pa));
            if self.refuse.lock().unwrap().contains(&pa) { shared::abi::rmm_el3::E_RMM_BAD_PAS } else { 0 }
        }
        fn undelegate(&self, pa: u64) -> i64 {
            self.calls.lock().unwrap().push(("undelegate", pa));
            if self.refuse.lock().unwrap().contains(&pa) { shared::abi::rmm_el3::E_RMM_BAD_PAS } else { 0 }
        }
    }
}
