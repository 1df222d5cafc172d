//! Memory management: a pool of 4 KiB frames for translation tables, and the
//! Stage-1 (EL2) and Stage-2 (NS and Secure IPA) tables built on it with the
//! `aarch64-paging` crate.  Everything here is plain data and runs on the host
//! under `cargo test`; activating a table is the caller's (arch) business.

pub mod pool;
pub mod tables;

pub use pool::{FramePool, PageArea, PoolTranslation, PAGE_SIZE};
pub use tables::*;
