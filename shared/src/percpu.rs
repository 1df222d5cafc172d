//! Per-CPU data: a fixed array indexed by the linear CPU index.

/// Most CPUs any Quadrant image supports (QEMU virt runs with -smp 4; TF-A's
/// qemu platform allows more, and the SPMD/RMMD pass a linear id).
pub const MAX_CPUS: usize = 8;

/// Linear index of a CPU from its MPIDR_EL1 on QEMU virt with GICv3, where
/// each cluster holds 16 CPUs in Aff0 (see QEMU `virt_cpu_mp_affinity`).
pub const fn cpu_index_from_mpidr(mpidr: u64) -> Option<usize> {
    let aff0 = (mpidr & 0xff) as usize;
    let aff1 = ((mpidr >> 8) & 0xff) as usize;
    let idx = aff1 * 16 + aff0;
    if aff0 < 16 && idx < MAX_CPUS { Some(idx) } else { None }
}

/// One `T` per CPU.  Each CPU only touches its own slot, but the slots are
/// wrapped in a lock anyway so other CPUs may inspect them.
pub struct PerCpu<T> {
    slots: [spin::Mutex<T>; MAX_CPUS],
}

impl<T> PerCpu<T> {
    pub const fn new(slots: [spin::Mutex<T>; MAX_CPUS]) -> Self {
        Self { slots }
    }

    /// The slot of CPU `idx`, or `None` for an index out of range.
    pub fn get(&self, idx: usize) -> Option<&spin::Mutex<T>> {
        self.slots.get(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpidr_to_index() {
        assert_eq!(cpu_index_from_mpidr(0x8000_0000), Some(0));
        assert_eq!(cpu_index_from_mpidr(0x8000_0003), Some(3));
        assert_eq!(cpu_index_from_mpidr(0x8000_0100), None); // beyond MAX_CPUS
        assert_eq!(cpu_index_from_mpidr(0x8000_00ff), None);
    }
}
