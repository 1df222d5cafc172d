//! Fake RMM for host tests (below).
