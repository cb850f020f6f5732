//! Regressions of `netkit send`.
