//! Regressions of `netkit sweep`.
