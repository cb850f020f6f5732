//! Classic BPF programs for the raw sockets of the SYN scan and of the raw sweep probers
//! (`ack:PORT`, `timestamp`): a raw socket otherwise gets a copy of every packet of its
//! protocol that reaches this machine (every TCP segment of every connection, every ICMP
//! message), and its reader wakes for each. The kernel runs the program before queueing, so
//! only what could answer a probe is read.
//!
//! Each program is attached with `socket2::Socket::attach_filter`. An IPv4 raw socket sees the
//! IP header first (the program skips it, whatever its length);
//! an IPv6 raw socket sees the transport header at offset 0.

use nix::libc::{self, sock_filter};

/// Keep the packet (all of it).
const KEEP: u32 = 0xffff;

fn op(code: u32, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The loads of a half-word and a byte at an offset into the transport header: indexed past
/// the IPv4 header (X), absolute for IPv6.
fn loads(v6: bool) -> (u32, u32) {
    let mode = if v6 { libc::BPF_ABS } else { libc::BPF_IND };
    (
        libc::BPF_LD | libc::BPF_H | mode,
        libc::BPF_LD | libc::BPF_B | mode,
    )
}

/// The program's start: for IPv4, X = the IP header's length.
fn start(v6: bool) -> Vec<sock_filter> {
    match v6 {
        true => Vec::new(),
        false => vec![op(libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH, 0, 0, 0)],
    }
}

/// Compares A with each of `values`: a match jumps over the other comparisons and the refusal
/// that follows them, to the next instruction after it.
fn any_of(values: impl ExactSizeIterator<Item = u32>) -> Vec<sock_filter> {
    let n = values.len();
    let mut program: Vec<sock_filter> = values
        .enumerate()
        .map(|(i, value)| {
            let over = u8::try_from(n - i).unwrap_or(u8::MAX);
            op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, over, 0, value)
        })
        .collect();
    program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, 0));
    program
}

/// TCP segments to one of `ports` (the prober's source ports) with any of `flags` set (ACK
/// for the SYN scan's SYN-ACKs and resets, RST for the ACK prober's resets).
pub fn tcp_to(ports: &[u16], flags: u8, v6: bool) -> Vec<sock_filter> {
    let (ld_h, ld_b) = loads(v6);
    let mut program = start(v6);
    program.push(op(ld_h, 0, 0, 2)); // destination port
    program.extend(any_of(ports.iter().map(|p| u32::from(*p))));
    program.extend([
        op(ld_b, 0, 0, 13), // flags
        op(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            0,
            1,
            u32::from(flags),
        ),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, KEEP),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ]);
    program
}

/// ICMP (or ICMPv6) messages of one of `types`: the errors and replies a prober reads.
pub fn icmp_of(types: &[u8], v6: bool) -> Vec<sock_filter> {
    let (_, ld_b) = loads(v6);
    let mut program = start(v6);
    program.push(op(ld_b, 0, 0, 0)); // type
    program.extend(any_of(types.iter().map(|t| u32::from(*t))));
    program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, KEEP));
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the subset of classic BPF these programs use over `packet`: what it keeps.
    fn run(program: &[sock_filter], packet: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |at: usize| u32::from(packet.get(at).copied().unwrap_or(0));
        loop {
            let ins = program[pc];
            let (code, k) = (u32::from(ins.code), ins.k as usize);
            pc += 1;
            match code {
                c if c == libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH => {
                    x = (byte(k) & 0x0f) * 4;
                }
                c if c == libc::BPF_LD | libc::BPF_H | libc::BPF_ABS => {
                    a = byte(k) << 8 | byte(k + 1);
                }
                c if c == libc::BPF_LD | libc::BPF_H | libc::BPF_IND => {
                    let at = x as usize + k;
                    a = byte(at) << 8 | byte(at + 1);
                }
                c if c == libc::BPF_LD | libc::BPF_B | libc::BPF_ABS => a = byte(k),
                c if c == libc::BPF_LD | libc::BPF_B | libc::BPF_IND => a = byte(x as usize + k),
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => {
                    pc += usize::from(if a == ins.k { ins.jt } else { ins.jf });
                }
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => {
                    pc += usize::from(if a & ins.k != 0 { ins.jt } else { ins.jf });
                }
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
    }

    /// A TCP header to `dport` with `flags`, behind an IPv4 header of `ihl` words (IPv4) or
    /// alone (IPv6).
    fn segment(dport: u16, flags: u8, v6: bool, ihl: u8) -> Vec<u8> {
        let mut packet = match v6 {
            true => Vec::new(),
            false => {
                let mut ip = vec![0u8; usize::from(ihl) * 4];
                ip[0] = 0x40 | ihl;
                ip
            }
        };
        let mut tcp = [0u8; 20];
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[13] = flags;
        packet.extend_from_slice(&tcp);
        packet
    }

    #[test]
    fn tcp_keeps_our_ports_with_the_flag_only() {
        let ports = [40000, 40001, 40002, 40003];
        for v6 in [false, true] {
            let program = tcp_to(&ports, 0x10, v6);
            for ihl in [5, 6] {
                for port in ports {
                    assert_eq!(run(&program, &segment(port, 0x12, v6, ihl)), KEEP);
                    assert_eq!(run(&program, &segment(port, 0x14, v6, ihl)), KEEP);
                    assert_eq!(run(&program, &segment(port, 0x02, v6, ihl)), 0, "a SYN");
                }
                assert_eq!(run(&program, &segment(39999, 0x12, v6, ihl)), 0);
            }
            let resets = tcp_to(&[50000], 0x04, v6);
            assert_eq!(run(&resets, &segment(50000, 0x04, v6, 5)), KEEP);
            assert_eq!(run(&resets, &segment(50000, 0x10, v6, 5)), 0, "an ACK");
            assert_eq!(run(&resets, &segment(50001, 0x04, v6, 5)), 0);
        }
    }

    #[test]
    fn icmp_keeps_the_types_asked_for() {
        let v4 = icmp_of(&[3, 14], false);
        let mut packet = vec![0u8; 28];
        packet[0] = 0x45;
        for (kind, kept) in [(3, KEEP), (14, KEEP), (0, 0), (8, 0), (11, 0)] {
            packet[20] = kind;
            assert_eq!(run(&v4, &packet), kept, "type {kind}");
        }
        let v6 = icmp_of(&[1], true);
        assert_eq!(run(&v6, &[1, 0, 0, 0]), KEEP);
        assert_eq!(run(&v6, &[129, 0, 0, 0]), 0);
    }
}
