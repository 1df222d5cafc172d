//! The SPMC's target binary: entry points, exception vectors, the world switch
//! with the SPMD and the hardware [`spmc::ffa::Platform`] (`arch/`), around the
//! host-tested core in the `spmc` library.  On the host it is an empty program.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {}
