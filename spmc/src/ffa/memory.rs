//! Memory management (DEN0077 v1.2 chapters "Memory management" and "Memory
//! management interfaces"): the home of FFA_MEM_SHARE, FFA_MEM_LEND,
//! FFA_MEM_DONATE, FFA_MEM_RETRIEVE_REQ/RESP, FFA_MEM_RELINQUISH and
//! FFA_MEM_RECLAIM (with FFA_MEM_FRAG_RX/TX for fragmented descriptors) once
//! the SPMC implements them.  Nothing yet: these ids have no row in
//! [`super::CALLS`], so every caller gets FFA_ERROR(NOT_SUPPORTED).
