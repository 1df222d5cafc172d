//! Execution contexts and the locks that guard them.
//!
//! Each execution context of each partition (DEN0077 v1.2, "execution
//! context": one per PE for an MP partition, one that migrates for a UP one)
//! has its own lock, so calls on different PEs that touch different contexts
//! run in parallel.  Nothing is locked while an SP runs: a context that runs
//! is marked [`CtxState::Running`] (or `Off` during its initialisation, or
//! `HandlingInterrupt`) under its lock, and every other PE that wants it then
//! sees it busy and answers BUSY, as Hafnium does.
//!
//! The lock is carried in a type, the shape of Hafnium's `vcpu_locked` and
//! `two_vcpu_locked` (`inc/hf/vcpu.h`): a function that needs a context
//! exclusively takes a [`ContextLocked`]; two contexts (the caller and the
//! callee of an SP-to-SP direct request) are locked by [`Spmc::lock_two`],
//! always in the same order (partition index, then context index), so two
//! PEs that lock the same pair from either end cannot deadlock.
//!
//! Lock order, outermost first:
//! 1. context locks, at most two, taken together by [`Spmc::lock_two`];
//! 2. the memory transaction store ([`super::memory`]);
//! 3. leaf locks that are never held while another SPMC lock is taken: a
//!    partition's mailbox, console line, secondary entry point and active
//!    interrupts, and the Normal world's mailbox;
//! 4. the platform's own (the SPMC's Stage-1 table, Stage-2 tables, the console).
//!
//! None is held across [`super::Platform::run_sp`].

use super::cpu_cycles::CtxState;
use super::interrupts::VirqQueue;
use super::Spmc;

/// What the SPMC keeps about one execution context (its registers are the
/// platform's, see [`super::Platform::run_sp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecutionContext {
    pub state: CtxState,
    /// Virtual interrupts pending for it.
    pub virqs: VirqQueue,
    /// A managed exit was signalled to it and not answered yet.
    pub managed_exit: bool,
}

impl ExecutionContext {
    pub const fn new() -> Self {
        Self { state: CtxState::Off, virqs: VirqQueue::new(), managed_exit: false }
    }
}

impl Default for ExecutionContext {
    fn default() -> Self {
        Self::new()
    }
}

/// Context `ctx` of partition `index`, locked: the proof that the holder may
/// read and change it.  Unlocks when dropped.
pub struct ContextLocked<'a> {
    pub index: usize,
    pub ctx: usize,
    guard: spin::MutexGuard<'a, ExecutionContext>,
}

impl core::ops::Deref for ContextLocked<'_> {
    type Target = ExecutionContext;
    fn deref(&self) -> &ExecutionContext {
        &self.guard
    }
}

impl core::ops::DerefMut for ContextLocked<'_> {
    fn deref_mut(&mut self) -> &mut ExecutionContext {
        &mut self.guard
    }
}

impl Spmc {
    /// Locks context `ctx` of partition `i`.  `i` comes from
    /// [`Spmc::find`]/[`Spmc::add_partition`] and `ctx` from
    /// [`super::Partition::ctx_for`] or a bound check against
    /// [`super::Partition::context_count`].
    pub fn lock_context(&self, i: usize, ctx: usize) -> ContextLocked<'_> {
        ContextLocked { index: i, ctx, guard: self.part(i).contexts[ctx].lock() }
    }

    /// Locks two different contexts, in the one global order (partition
    /// index, then context index), and returns them in the order asked.
    /// None when `a` and `b` are the same context: it cannot be locked twice
    /// (a partition calling its own busy context gets BUSY from the caller).
    pub fn lock_two(&self, a: (usize, usize), b: (usize, usize)) -> Option<(ContextLocked<'_>, ContextLocked<'_>)> {
        if a == b {
            return None;
        }
        if a < b {
            let first = self.lock_context(a.0, a.1);
            let second = self.lock_context(b.0, b.1);
            Some((first, second))
        } else {
            let first = self.lock_context(b.0, b.1);
            let second = self.lock_context(a.0, a.1);
            Some((second, first))
        }
    }

    /// A copy of context `ctx` of partition `i` as it is now (for decisions
    /// that need no exclusivity, and for tests).
    pub fn context(&self, i: usize, ctx: usize) -> ExecutionContext {
        *self.lock_context(i, ctx)
    }
}
