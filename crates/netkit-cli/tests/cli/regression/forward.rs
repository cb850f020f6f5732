//! Regressions of `netkit forward`.
