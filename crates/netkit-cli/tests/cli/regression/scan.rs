//! Regressions of `netkit scan`.
