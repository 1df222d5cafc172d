//! A VM's teardown as plain state, host-tested: its RAM zeroed and, for a
//! reset (or a VM starting in freed RAM), its payloads copied in from the
//! store, a chunk at a time.  `crate::guest` does the zeroing and copying
//! between its CPU's vCPU runs, so the other VMs' vCPUs wait for one chunk,
//! never for a whole RAM (256 MiB took 1.4 s in one go under TCG).
//!
//! Each CPU keeps a queue of them: a second VM that powers off on a CPU
//! still busy with another waits its turn instead of forcing the first
//! one to finish in one go.

use super::config::MAX_VMS;

/// One piece of a teardown's work: `len` bytes to PA `dst`, zeros or copied from PA `src`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Work {
    /// None: zero.
    pub src: Option<u64>,
    pub dst: u64,
    pub len: u64,
}

impl Work {
    pub const fn zero(dst: u64, len: u64) -> Self {
        Self { src: None, dst, len }
    }
    pub const fn copy(src: u64, dst: u64, len: u64) -> Self {
        Self { src: Some(src), dst, len }
    }
}

/// The next chunk to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub work: Work,
    /// This chunk finishes a zeroing step (the RAM is scrubbed once it is done).
    pub scrubbed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Teardown {
    pub vm: usize,
    /// It boots (again) once the work is done.
    pub boot: bool,
    steps: [Work; 3],
    step: usize,
    /// Bytes of `steps[step]` handed out.
    done: u64,
    /// The next chunk not before this counter value: each chunk leaves the
    /// CPU to its vCPUs for as long as it took.
    pub next_at: u64,
}

impl Teardown {
    /// Up to three steps, done in order; empty ones (`len` 0) are skipped.
    pub fn new(vm: usize, boot: bool, steps: &[Work]) -> Self {
        let mut s = [Work::zero(0, 0); 3];
        s[..steps.len()].copy_from_slice(steps);
        Self { vm, boot, steps: s, step: 0, done: 0, next_at: 0 }
    }

    /// Hands out the next chunk of at most `max` bytes; None: all done.
    pub fn next_chunk(&mut self, max: u64) -> Option<Chunk> {
        while self.step < self.steps.len() && self.steps[self.step].len == self.done {
            (self.step, self.done) = (self.step + 1, 0);
        }
        let w = *self.steps.get(self.step)?;
        let n = max.min(w.len - self.done);
        let at = |pa: u64| pa + self.done;
        let chunk = Work { src: w.src.map(at), dst: at(w.dst), len: n };
        self.done += n;
        Some(Chunk { work: chunk, scrubbed: w.src.is_none() && self.done == w.len })
    }

    /// A chunk ran from counter value `start` to `end`: rest as long.
    pub fn took(&mut self, start: u64, end: u64) {
        self.next_at = end.saturating_add(end.saturating_sub(start));
    }

    pub fn due(&self, now: u64) -> bool {
        now >= self.next_at
    }
}

/// A CPU's teardowns, first in first out (at most one per VM).
#[derive(Debug, Default)]
pub struct Queue {
    items: [Option<Teardown>; MAX_VMS],
}

impl Queue {
    pub const fn new() -> Self {
        Self { items: [None; MAX_VMS] }
    }

    /// Appends `t`.  False if full (every VM already queued: cannot happen,
    /// a VM is torn down at most once at a time).
    pub fn push(&mut self, t: Teardown) -> bool {
        match self.items.iter_mut().find(|i| i.is_none()) {
            Some(slot) => {
                *slot = Some(t);
                true
            }
            None => false,
        }
    }

    /// The one being worked on.
    pub fn front(&self) -> Option<&Teardown> {
        self.items[0].as_ref()
    }

    pub fn front_mut(&mut self) -> Option<&mut Teardown> {
        self.items[0].as_mut()
    }

    /// Removes the front one; the next moves up.
    pub fn pop(&mut self) -> Option<Teardown> {
        let t = self.items[0].take();
        self.items.rotate_left(1);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn zeroes_then_copies_in_chunks() {
        let mut t = Teardown::new(1, true, &[Work::zero(0x8000_0000, 10 * MIB), Work::copy(0xc000_0000, 0x8020_0000, 3 * MIB), Work::zero(0, 0)]);
        let mut chunks = vec![];
        while let Some(c) = t.next_chunk(4 * MIB) {
            chunks.push(c);
        }
        let z = |dst, len, scrubbed| Chunk { work: Work::zero(dst, len), scrubbed };
        assert_eq!(
            chunks,
            [
                z(0x8000_0000, 4 * MIB, false),
                z(0x8040_0000, 4 * MIB, false),
                z(0x8080_0000, 2 * MIB, true),
                Chunk { work: Work::copy(0xc000_0000, 0x8020_0000, 3 * MIB), scrubbed: false },
            ]
        );
        assert_eq!(t.next_chunk(4 * MIB), None, "stays done");
    }

    #[test]
    fn empty_steps_are_skipped_and_nothing_is_done() {
        let mut t = Teardown::new(0, false, &[Work::copy(1, 2, 0), Work::zero(0x1000, 0x1000)]);
        assert_eq!(t.next_chunk(4 * MIB), Some(Chunk { work: Work::zero(0x1000, 0x1000), scrubbed: true }));
        assert_eq!(t.next_chunk(4 * MIB), None);
        assert_eq!(Teardown::new(0, false, &[]).next_chunk(4 * MIB), None);
    }

    #[test]
    fn each_chunk_rests_as_long_as_it_took() {
        let mut t = Teardown::new(0, false, &[Work::zero(0, MIB)]);
        assert!(t.due(0));
        t.took(100, 150);
        assert!(!t.due(199));
        assert!(t.due(200));
        // A counter at its end does not wrap into "due at once".
        t.took(u64::MAX - 1, u64::MAX);
        assert!(!t.due(u64::MAX - 1));
    }

    #[test]
    fn the_queue_is_first_in_first_out_and_bounded() {
        let mut q = Queue::new();
        assert!(q.front().is_none());
        for vm in 0..MAX_VMS {
            assert!(q.push(Teardown::new(vm, false, &[])));
        }
        assert!(!q.push(Teardown::new(9, false, &[])));
        q.front_mut().unwrap().next_at = 7;
        assert_eq!(q.front().map(|t| (t.vm, t.next_at)), Some((0, 7)));
        assert_eq!(q.pop().map(|t| t.vm), Some(0));
        assert_eq!(q.front().map(|t| t.vm), Some(1));
        // Room again, at the back.
        assert!(q.push(Teardown::new(9, false, &[])));
        let order: Vec<usize> = core::iter::from_fn(|| q.pop().map(|t| t.vm)).collect();
        assert_eq!(order, [1, 2, 3, 9]);
        assert!(q.front().is_none());
    }
}
