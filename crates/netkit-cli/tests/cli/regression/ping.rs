//! Regressions of `netkit ping`.
