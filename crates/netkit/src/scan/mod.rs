//! The TCP connect scanner's data: the ranking of ports by how often they are found open
//! ([`rank`]) and the table of service names ([`services`]). The scan engine itself arrives with
//! `netkit scan`.

pub mod rank;
pub mod services;
