//! `memcpy` and `memset` for the SPMC image, in place of compiler_builtins'
//! generic ones: every FF-A round trip moves several 144-byte register
//! blocks (see `shared::mem_routines`; issue P item 3).

shared::fast_mem_routines!();
