//! Regressions of `netkit wait`.
