//! Regressions of `netkit echo`.
