//! Reply matching against crafted messages (foreign, truncated, corrupted), and a live round
//! trip over loopback when the process may open an ICMP socket.

use super::*;

const MATCHER: Matcher = Matcher {
    ident: 0x4242,
    cookie: 0xc0ff_ee00,
    payload_size: 24,
};

fn got(len: usize) -> Received {
    Received {
        len,
        from: "127.0.0.1".parse().unwrap(),
        hop_limit: Some(63),
        kernel_time: None,
        queued_error: None,
    }
}

/// An echo message of `version` with a probe sent at 1000 ns, optionally behind an IPv4 header.
fn message(version: Version, reply: bool, ident: u16, cookie: u32, size: usize) -> Vec<u8> {
    let mut payload = vec![0u8; size];
    let probe = Probe {
        cookie,
        index: 5,
        sent_ns: 1_000,
    };
    if size >= PROBE_LEN {
        probe.write(&mut payload);
    }
    let (seq_no, data) = (9, &payload[..]);
    let repr = match reply {
        true => Repr::EchoReply {
            ident,
            seq_no,
            data,
        },
        false => Repr::EchoRequest {
            ident,
            seq_no,
            data,
        },
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), version);
    bytes
}

fn with_ipv4_header(message: &[u8]) -> Vec<u8> {
    let total = (20 + message.len()) as u16;
    let mut datagram = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 57, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    datagram[2..4].copy_from_slice(&total.to_be_bytes());
    datagram.extend_from_slice(message);
    datagram
}

/// The reply `datagram` is, if ours; its checksum must be right.
fn accept_raw_v4(datagram: &[u8]) -> Option<Reply> {
    let accepted = MATCHER.accept(
        Version::V4,
        Kind::Raw,
        &got(datagram.len()),
        datagram,
        3_500,
    );
    accepted.map(|(reply, corrupted)| {
        assert!(!corrupted, "{reply:?}");
        reply
    })
}

#[test]
fn accepts_our_reply_with_its_index_rtt_and_ttl() {
    let datagram = with_ipv4_header(&message(Version::V4, true, 0x4242, 0xc0ff_ee00, 24));
    let reply = accept_raw_v4(&datagram).expect("ours");
    assert_eq!(reply.index, 5);
    assert_eq!(reply.seq, 9);
    assert_eq!(reply.ttl, Some(57), "raw IPv4: TTL from the IP header");
    assert_eq!(reply.bytes, 32);
    assert_eq!(reply.rtt, Some(Duration::from_nanos(2_500)));
}

#[test]
fn ignores_foreign_identifier_and_cookie() {
    let foreign_id = with_ipv4_header(&message(Version::V4, true, 0x4243, 0xc0ff_ee00, 24));
    assert_eq!(accept_raw_v4(&foreign_id), None);
    let foreign_cookie = with_ipv4_header(&message(Version::V4, true, 0x4242, 1, 24));
    assert_eq!(accept_raw_v4(&foreign_cookie), None);
}

#[test]
fn datagram_sockets_leave_the_identifier_to_the_kernel() {
    let bytes = message(Version::V4, true, 0x9999, 0xc0ff_ee00, 24);
    let reply = MATCHER.accept(
        Version::V4,
        Kind::Datagram,
        &got(bytes.len()),
        &bytes,
        3_500,
    );
    assert_eq!(
        reply.map(|(r, corrupted)| (r.index, r.ttl, corrupted)),
        Some((5, Some(63), false))
    );
}

#[test]
fn ignores_our_own_request_seen_on_loopback() {
    let request = with_ipv4_header(&message(Version::V4, false, 0x4242, 0xc0ff_ee00, 24));
    assert_eq!(accept_raw_v4(&request), None);
}

#[test]
fn ignores_truncated_datagrams() {
    let whole = with_ipv4_header(&message(Version::V4, true, 0x4242, 0xc0ff_ee00, 24));
    for len in 0..whole.len() {
        assert_eq!(accept_raw_v4(&whole[..len]), None, "cut at {len}");
    }
}

#[test]
fn replies_with_less_or_more_data_are_ours_and_cut_short_of_the_probe_untimed() {
    // Sent with 24 data bytes; iputils counts a reply with less (`(truncated)`) or more, and
    // one too short for its time (below 16 data bytes) by its identifier alone, untimed.
    for len in [20, 16, 40] {
        let reply = with_ipv4_header(&message(Version::V4, true, 0x4242, 0xc0ff_ee00, len));
        let accepted = accept_raw_v4(&reply);
        let timed = Some(Duration::from_nanos(2_500));
        assert_eq!(
            accepted.map(|r| (r.index, r.bytes, r.rtt)),
            Some((5, 8 + len, timed)),
            "{len}"
        );
    }
    for len in [15, 8, 0] {
        let reply = with_ipv4_header(&message(Version::V4, true, 0x4242, 0xc0ff_ee00, len));
        let accepted = accept_raw_v4(&reply);
        assert_eq!(
            accepted.map(|r| (r.index, r.bytes, r.rtt)),
            Some((UNKNOWN_INDEX, 8 + len, None)),
            "{len}"
        );
        let foreign = with_ipv4_header(&message(Version::V4, true, 0x4243, 0xc0ff_ee00, len));
        assert_eq!(accept_raw_v4(&foreign), None, "{len}");
        let v6 = message(Version::V6, true, 0x4242, 0xc0ff_ee00, len);
        let accepted = MATCHER.accept(Version::V6, Kind::Raw, &got(v6.len()), &v6, 3_500);
        assert_eq!(
            accepted.map(|(r, _)| (r.index, r.bytes, r.rtt)),
            Some((UNKNOWN_INDEX, 8 + len, None)),
            "IPv6, {len}"
        );
    }
}

#[test]
fn replies_of_ours_with_a_bad_checksum_are_told_apart() {
    let mut datagram = with_ipv4_header(&message(Version::V4, true, 0x4242, 0xc0ff_ee00, 24));
    let last = datagram.len() - 1;
    datagram[last] ^= 0xff;
    let accepted = MATCHER.accept(Version::V4, Kind::Raw, &got(0), &datagram, 3_500);
    let (reply, corrupted) = accepted.expect("ours, corrupted");
    assert!(corrupted);
    assert_eq!((reply.index, reply.seq), (5, 9));
    // Someone else's, corrupted: still not ours.
    let mut foreign = with_ipv4_header(&message(Version::V4, true, 0x4243, 0xc0ff_ee00, 24));
    foreign[last] ^= 0xff;
    assert_eq!(
        MATCHER.accept(Version::V4, Kind::Raw, &got(0), &foreign, 3_500),
        None
    );
}

#[test]
fn ignores_replies_from_the_future() {
    let datagram = with_ipv4_header(&message(Version::V4, true, 0x4242, 0xc0ff_ee00, 24));
    let early = MATCHER.accept(Version::V4, Kind::Raw, &got(0), &datagram, 999);
    assert_eq!(early, None);
}

#[test]
fn v6_replies_come_without_ip_header() {
    let bytes = message(Version::V6, true, 0x4242, 0xc0ff_ee00, 24);
    let reply = MATCHER.accept(Version::V6, Kind::Raw, &got(bytes.len()), &bytes, 2_000);
    assert_eq!(
        reply.map(|(r, corrupted)| (r.index, r.ttl, corrupted)),
        Some((5, Some(63), false))
    );
    let v4 = message(Version::V4, true, 0x4242, 0xc0ff_ee00, 24);
    assert_eq!(
        MATCHER.accept(Version::V6, Kind::Raw, &got(v4.len()), &v4, 2_000),
        None
    );
}

#[test]
fn rejects_payloads_too_big_for_a_datagram() {
    let config = Config {
        payload_size: 65508,
        ..Config::default()
    };
    let err = Engine::new(&config, &[Version::V4]).unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Input);
    assert!(err
        .to_string()
        .starts_with("65508: packet size must be 0-65507 bytes to an IPv4 host"));
}

#[test]
fn rejects_a_ttl_of_zero_to_ipv4_hosts() {
    let config = Config {
        socket: SocketOptions {
            ttl: Some(0),
            ..SocketOptions::default()
        },
        ..Config::default()
    };
    let err = Engine::new(&config, &[Version::V4, Version::V6]).unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Input);
    assert!(err.to_string().starts_with("0: TTL must be"), "{err}");
    assert!(check_ttl(Some(0), &[Version::V6]).is_ok());
    assert!(check_ttl(Some(1), &[Version::V4]).is_ok());
}

#[test]
fn small_payloads_are_matched_without_probe_or_time() {
    let matcher = Matcher {
        payload_size: 8,
        ..MATCHER
    };
    let repr = Repr::EchoReply {
        ident: 0x4242,
        seq_no: 3,
        data: &[0, 1, 2, 3, 4, 5, 6, 7],
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), Version::V4);
    let datagram = with_ipv4_header(&bytes);
    let reply = matcher.accept(Version::V4, Kind::Raw, &got(0), &datagram, 3_500);
    let (reply, _) = reply.expect("ours by identifier");
    assert_eq!(
        (reply.index, reply.seq, reply.rtt),
        (UNKNOWN_INDEX, 3, None)
    );
    assert_eq!(reply.bytes, 16);
    // Cut short or longer, as iputils counts it.
    for len in [4, 12] {
        let cut = with_ipv4_header(&message(Version::V4, true, 0x4242, 0, len));
        let reply = matcher.accept(Version::V4, Kind::Raw, &got(0), &cut, 3_500);
        assert_eq!(reply.map(|(r, _)| r.bytes), Some(8 + len), "{len}");
    }
    let foreign = with_ipv4_header(&message(Version::V4, true, 0x4243, 0, 8));
    assert_eq!(
        matcher.accept(Version::V4, Kind::Raw, &got(0), &foreign, 3_500),
        None
    );
}

#[test]
fn templates_are_iputils_filler_or_the_pattern() {
    assert_eq!(template(4, None), [0, 1, 2, 3]);
    assert_eq!(
        template(5, Some(&[0xab, 0x0c])),
        [0xab, 0x0c, 0xab, 0x0c, 0xab]
    );
    assert_eq!(template(0, None), [0u8; 0]);
}

#[tokio::test]
async fn round_trip_over_loopback() {
    let engine = match Engine::new(&Config::default(), &[Version::V4, Version::V6]) {
        Ok(engine) => engine,
        Err(Error::IcmpDenied(_)) => {
            return crate::testing::skip("round_trip_over_loopback", "no ICMP socket allowed")
        }
        Err(e) => panic!("{e}"),
    };
    engine
        .send(3, "127.0.0.1:0".parse().unwrap(), 11)
        .await
        .unwrap();
    engine
        .send(4, "[::1]:0".parse().unwrap(), 12)
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let reply = tokio::time::timeout(Duration::from_secs(10), engine.recv())
            .await
            .expect("a reply within 10 s")
            .unwrap();
        assert_eq!(reply.bytes, 64);
        seen.push((reply.index, reply.addr.to_string(), reply.seq));
    }
    seen.sort();
    assert_eq!(
        seen,
        [(3, "127.0.0.1".to_string(), 11), (4, "::1".to_string(), 12)]
    );
}

#[tokio::test]
async fn many_probes_in_flight_are_matched_by_their_payload() {
    let engine = match Engine::new(&Config::default(), &[Version::V4, Version::V6]) {
        Ok(engine) => engine,
        Err(Error::IcmpDenied(_)) => {
            let test = "many_probes_in_flight_are_matched_by_their_payload";
            return crate::testing::skip(test, "no ICMP socket allowed");
        }
        Err(e) => panic!("{e}"),
    };
    const PROBES: u32 = 300;
    let addr = |i: u32| -> IpAddr {
        match i % 2 {
            0 => "127.0.0.1".parse().unwrap(),
            _ => "::1".parse().unwrap(),
        }
    };
    // ICMP may drop under load (other tests share the namespace and raw sockets see every
    // ICMP packet): probes still unanswered are sent again, up to five passes. What must hold
    // is that every reply is matched to the probe that caused it and every probe is answered.
    let mut seen = vec![0u32; PROBES as usize];
    for _pass in 0..5 {
        let missing: Vec<u32> = (0..PROBES).filter(|i| seen[*i as usize] == 0).collect();
        if missing.is_empty() {
            break;
        }
        let sender = async {
            for (n, i) in missing.iter().enumerate() {
                engine
                    .send(*i, SocketAddr::new(addr(*i), 0), (*i * 7) as u16)
                    .await
                    .unwrap();
                if n % 32 == 31 {
                    tokio::task::yield_now().await; // pace, as a sweep does
                }
            }
        };
        let receiver = async {
            let mut got = Vec::new();
            while let Ok(reply) = tokio::time::timeout(Duration::from_secs(2), engine.recv()).await
            {
                got.push(reply.unwrap());
            }
            got
        };
        for reply in tokio::join!(sender, receiver).1 {
            assert_eq!(reply.addr, addr(reply.index), "{reply:?}");
            assert_eq!(reply.seq, (reply.index * 7) as u16, "{reply:?}");
            seen[reply.index as usize] += 1;
        }
    }
    assert!(seen.iter().all(|n| *n >= 1), "unanswered: {seen:?}");
}

/// A time-exceeded error from 198.18.0.2 quoting `request` (an ICMPv4 echo request) sent to
/// 198.18.1.2, behind the outer IPv4 header a raw socket delivers.
fn time_exceeded(request: &[u8]) -> Vec<u8> {
    let mut quoted = vec![
        0x45, 0, 0, 84, 0, 0, 0x40, 0, 1, 1, 0, 0, 198, 18, 0, 1, 198, 18, 1, 2,
    ];
    quoted.extend_from_slice(request);
    let mut message = vec![11, 0, 0, 0, 0, 0, 0, 0];
    message.extend(quoted);
    Packet::new_unchecked(&mut message[..]).fill_checksum_v4();
    with_ipv4_header(&message)
}

#[test]
fn errors_about_our_probes_carry_their_index() {
    let request = message(Version::V4, false, 0x4242, 0xc0ff_ee00, 24);
    let datagram = time_exceeded(&request);
    let error = MATCHER.accept_error(Version::V4, Kind::Raw, &got(0), &datagram);
    let error = error.expect("ours");
    assert_eq!((error.index, error.seq), (Some(5), 9));
    assert_eq!(error.target, "198.18.1.2".parse::<IpAddr>().unwrap());
    assert_eq!(error.describe(), "Time to live exceeded");
    // Only the echo header quoted: no index, but still ours by identifier.
    let short = MATCHER.accept_error(
        Version::V4,
        Kind::Raw,
        &got(0),
        &time_exceeded(&request[..8]),
    );
    assert_eq!(short.map(|e| e.index), Some(None));
    // Not an echo reply either.
    assert_eq!(
        MATCHER.accept(Version::V4, Kind::Raw, &got(0), &datagram, 3_500),
        None
    );
}

#[test]
fn queued_errors_of_datagram_sockets_name_the_request() {
    let request = message(Version::V4, false, 0x0777, 0xc0ff_ee00, 24);
    let got = Received {
        from: "198.18.1.2".parse().unwrap(),
        queued_error: Some(crate::sys::cmsg::QueuedError {
            origin: nix::libc::SO_EE_ORIGIN_ICMP,
            msg_type: 3,
            code: 1,
            info: 0,
            offender: Some("198.18.0.1".parse().unwrap()),
        }),
        ..got(request.len())
    };
    let error = MATCHER.queued_error(&got, &request).expect("ours");
    assert_eq!((error.index, error.seq), (Some(5), 9));
    assert_eq!(error.from, "198.18.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(error.target, "198.18.1.2".parse::<IpAddr>().unwrap());
    assert_eq!(error.describe(), "Destination Host Unreachable");
    // Only the echo header quoted: still ours (the kernel chose the socket), no index.
    let short = MATCHER.queued_error(&got, &request[..8]).expect("ours");
    assert_eq!(short.index, None);
    let foreign = message(Version::V4, false, 0x0777, 7, 24);
    assert_eq!(MATCHER.queued_error(&got, &foreign), None);
}

#[test]
fn errors_about_other_probes_are_ignored() {
    let foreign_id = time_exceeded(&message(Version::V4, false, 0x4243, 0xc0ff_ee00, 24));
    assert_eq!(
        MATCHER.accept_error(Version::V4, Kind::Raw, &got(0), &foreign_id),
        None
    );
    let foreign_cookie = time_exceeded(&message(Version::V4, false, 0x4242, 7, 24));
    assert_eq!(
        MATCHER.accept_error(Version::V4, Kind::Raw, &got(0), &foreign_cookie),
        None
    );
    let ours = time_exceeded(&message(Version::V4, false, 0x4242, 0xc0ff_ee00, 24));
    assert_eq!(
        MATCHER.accept_error(Version::V4, Kind::Datagram, &got(0), &ours),
        None
    );
}
