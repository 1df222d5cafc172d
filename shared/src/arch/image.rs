//! The running image's own layout, from the symbols of `shared/link.ld.in`.

use crate::mm::{self, El2Map, MemKind};

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
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

/// Identity-maps this image into `table`: text RX, rodata RO, data/bss/stacks RW.
/// `non_secure` sets the NS bit (for an image running in the Non-secure PAS from
/// a Secure or Realm EL2 that is never the case; at NS-EL2 the bit is ignored).
pub fn map_self(table: &mut El2Map) -> Result<(), aarch64_paging::MapError> {
    let (start, text_end, ro_end, end) = layout();
    mm::map(table, start, start, text_end - start, mm::el2_attributes(MemKind::Code, false))?;
    mm::map(table, text_end, text_end, ro_end - text_end, mm::el2_attributes(MemKind::ReadOnly, false))?;
    mm::map(table, ro_end, ro_end, end - ro_end, mm::el2_attributes(MemKind::ReadWrite, false))?;
    Ok(())
}
