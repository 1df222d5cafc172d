//! The running image's own layout, from the symbols of `shared/link.ld.in`.

use crate::mm::{self, El2Map, MemKind};

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __stacks_start: u8;
    static __stacks_end: u8;
    static __image_end: u8;
}

/// (start, text_end, rodata_end, end) of this image.
pub fn layout() -> (usize, usize, usize, usize) {
    // Only the addresses of the linker symbols are taken, which needs no `unsafe`.
    (
        &raw const __image_start as usize,
        &raw const __text_end as usize,
        &raw const __rodata_end as usize,
        &raw const __image_end as usize,
    )
}

/// Identity-maps this image into `table`: text RX, rodata RO, data/bss RW,
/// and each CPU's stack RW except its lowest page, left unmapped as a guard:
/// once the MMU is on, a stack overflow faults there (an "unexpected EL2
/// exception" with FAR in the guard page) instead of silently writing over
/// the next CPU's stack.
pub fn map_self(table: &mut El2Map) -> Result<(), aarch64_paging::MapError> {
    let (start, text_end, ro_end, end) = layout();
    let (stacks_start, stacks_end) = (&raw const __stacks_start as usize, &raw const __stacks_end as usize);
    let rw = mm::el2_attributes(MemKind::ReadWrite, false);
    mm::map(table, start, start, text_end - start, mm::el2_attributes(MemKind::Code, false))?;
    mm::map(table, text_end, text_end, ro_end - text_end, mm::el2_attributes(MemKind::ReadOnly, false))?;
    mm::map(table, ro_end, ro_end, stacks_start - ro_end, rw)?;
    let mut lo = stacks_start;
    while lo + super::entry::STACK_SIZE <= stacks_end {
        let usable = lo + mm::PAGE_SIZE;
        mm::map(table, usable, usable, super::entry::STACK_SIZE - mm::PAGE_SIZE, rw)?;
        lo += super::entry::STACK_SIZE;
    }
    if stacks_end < end {
        mm::map(table, stacks_end, stacks_end, end - stacks_end, rw)?;
    }
    Ok(())
}
