//! A bump-and-free-list allocator of zeroed 4 KiB frames for translation tables.
//! Addresses are identity mapped (VA == PA) in every Quadrant image at EL2,
//! which is what `PoolTranslation` relies on.

use aarch64_paging::descriptor::{PagingAttributes, PhysicalAddress};
use aarch64_paging::paging::{PageTable, Translation};
use core::ptr::NonNull;
use spin::Mutex;

pub const PAGE_SIZE: usize = 4096;

/// A contiguous, page-aligned range of memory handed out one frame at a time.
pub struct FramePool {
    next: usize,
    end: usize,
    /// Freed frames form a singly-linked list through their first word.
    free: usize,
    in_use: usize,
}

impl FramePool {
    pub const fn empty() -> Self {
        Self { next: 0, end: 0, free: 0, in_use: 0 }
    }

    /// # Safety
    /// `start..end` must be memory owned by the pool from now on, identity mapped
    /// (or MMU off) and writable.
    pub unsafe fn new(start: usize, end: usize) -> Self {
        let start = (start + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let end = end & !(PAGE_SIZE - 1);
        Self { next: start, end: end.max(start), free: 0, in_use: 0 }
    }

    /// A zeroed frame, or `None` when the pool is exhausted.
    pub fn alloc(&mut self) -> Option<usize> {
        let frame = if self.free != 0 {
            let f = self.free;
            // SAFETY: `f` is a frame of this pool that `free_frame` put on the list; its
            // first word holds the next free frame.
            self.free = unsafe { core::ptr::read(f as *const usize) };
            f
        } else if self.next < self.end {
            let f = self.next;
            self.next += PAGE_SIZE;
            f
        } else {
            return None;
        };
        // SAFETY: the frame belongs to the pool (see `new`) and nobody else uses it.
        unsafe { core::ptr::write_bytes(frame as *mut u8, 0, PAGE_SIZE) };
        self.in_use += 1;
        Some(frame)
    }

    /// # Safety
    /// `frame` must have come from `alloc` on this pool and be unused from now on.
    pub unsafe fn free_frame(&mut self, frame: usize) {
        // SAFETY: per the contract the frame is ours again.
        unsafe { core::ptr::write(frame as *mut usize, self.free) };
        self.free = frame;
        self.in_use -= 1;
    }

    pub fn frames_in_use(&self) -> usize {
        self.in_use
    }

    pub fn frames_left(&self) -> usize {
        let mut n = (self.end - self.next) / PAGE_SIZE;
        let mut f = self.free;
        while f != 0 {
            n += 1;
            // SAFETY: walking our own free list.
            f = unsafe { core::ptr::read(f as *const usize) };
        }
        n
    }
}

/// `aarch64_paging::Translation` over a shared frame pool with VA == PA.
pub struct PoolTranslation {
    pool: &'static Mutex<FramePool>,
}

impl PoolTranslation {
    pub const fn new(pool: &'static Mutex<FramePool>) -> Self {
        Self { pool }
    }

    /// Frames the pool can still hand out.
    pub fn frames_left(&self) -> usize {
        self.pool.lock().frames_left()
    }
}

impl<A: PagingAttributes> Translation<A> for PoolTranslation {
    fn allocate_table(&mut self) -> (NonNull<PageTable<A>>, PhysicalAddress) {
        // The crate's interface has no way to report exhaustion; a pool sized for
        // the image's needs makes this unreachable, and the images size their pools
        // from their own manifests before building any table.
        let frame = self.pool.lock().alloc().expect("translation table pool exhausted");
        (NonNull::new(frame as *mut PageTable<A>).unwrap(), PhysicalAddress(frame))
    }

    unsafe fn deallocate_table(&mut self, page_table: NonNull<PageTable<A>>) {
        // SAFETY: the crate only hands back tables it got from `allocate_table`.
        unsafe { self.pool.lock().free_frame(page_table.as_ptr() as usize) };
    }

    fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<A>> {
        NonNull::new(pa.0 as *mut PageTable<A>).unwrap()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A leaked, page-aligned pool for host tests.
    pub fn leaked_pool(frames: usize) -> &'static Mutex<FramePool> {
        let layout = std::alloc::Layout::from_size_align(frames * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: non-zero size layout.
        let mem = unsafe { std::alloc::alloc_zeroed(layout) } as usize;
        // SAFETY: freshly allocated and leaked: the pool owns it forever.
        Box::leak(Box::new(Mutex::new(unsafe { FramePool::new(mem, mem + frames * PAGE_SIZE) })))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::leaked_pool;

    #[test]
    fn alloc_free_reuse() {
        let pool = leaked_pool(2);
        let mut p = pool.lock();
        let a = p.alloc().unwrap();
        let b = p.alloc().unwrap();
        assert_ne!(a, b);
        assert_eq!(a % super::PAGE_SIZE, 0);
        assert!(p.alloc().is_none(), "pool of two frames gives two");
        // SAFETY: `a` came from `alloc` on this pool and the test never uses it again.
        unsafe { p.free_frame(a) };
        assert_eq!(p.frames_left(), 1);
        assert_eq!(p.alloc(), Some(a));
        assert_eq!(p.frames_in_use(), 2);
    }
}

/// `N` page-aligned frames reserved in an image's `.bss`, to seed a [`FramePool`].
#[repr(C, align(4096))]
pub struct PageArea<const N: usize>(core::cell::UnsafeCell<[[u8; PAGE_SIZE]; N]>);

// SAFETY: the area is only ever accessed through the FramePool built from it by
// `range`, which serialises access with its own lock.
unsafe impl<const N: usize> Sync for PageArea<N> {}

impl<const N: usize> PageArea<N> {
    pub const fn new() -> Self {
        Self(core::cell::UnsafeCell::new([[0; PAGE_SIZE]; N]))
    }

    /// Address range of the area, to hand to `FramePool::new` exactly once.
    pub fn range(&self) -> (usize, usize) {
        let start = self.0.get() as usize;
        (start, start + N * PAGE_SIZE)
    }
}

impl<const N: usize> Default for PageArea<N> {
    fn default() -> Self {
        Self::new()
    }
}
