use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn ep(text: &str) -> Endpoint {
    text.parse().expect(text)
}

#[test]
fn bare_port_is_loopback() {
    assert_eq!(ep("8080"), Endpoint::tcp("127.0.0.1:8080".parse().unwrap()));
}

#[test]
fn host_port_forms() {
    assert_eq!(
        ep("10.1.2.3:80"),
        Endpoint::tcp("10.1.2.3:80".parse().unwrap())
    );
    assert_eq!(
        ep("[::1]:8800"),
        Endpoint::tcp("[::1]:8800".parse().unwrap())
    );
    assert_eq!(ep("[::]:1"), Endpoint::tcp("[::]:1".parse().unwrap()));
    assert_eq!(
        ep("example.com:443"),
        Endpoint::Tcp {
            host: Host::Name("example.com".into()),
            port: 443
        }
    );
}

#[test]
fn unix_forms() {
    assert_eq!(ep("unix:/run/x.sock"), Endpoint::Unix("/run/x.sock".into()));
    assert_eq!(ep("unix:rel.sock"), Endpoint::Unix("rel.sock".into()));
    assert_eq!(ep("unix:@netkit"), Endpoint::Abstract("netkit".into()));
}

#[test]
fn exec_is_split_like_a_shell() {
    assert_eq!(ep("exec:cat"), Endpoint::Exec(vec!["cat".into()]));
    assert_eq!(
        ep("exec:sh -c 'echo hi; cat'"),
        Endpoint::Exec(vec!["sh".into(), "-c".into(), "echo hi; cat".into()])
    );
}

/// inet_aton's short forms, as curl, ncat and wait-for-it take them.
#[test]
fn short_ipv4_forms_are_addresses() {
    for text in [
        "127.1:80",
        "0x7f.1:80",
        "2130706433:80",
        "0177.0.0.1:80",
        "udp:127.1:80",
    ] {
        let want = match text.strip_prefix("udp:") {
            Some(_) => "udp:127.0.0.1:80",
            None => "127.0.0.1:80",
        };
        assert_eq!(ep(text), ep(want), "{text}");
    }
}

#[test]
fn display_round_trips() {
    for text in [
        "127.0.0.1:80",
        "[::1]:8800",
        "host.example:22",
        "unix:/tmp/a",
        "unix:@n",
        "exec:cat -u",
    ] {
        assert_eq!(ep(text).to_string(), text);
        assert_eq!(ep(&ep(text).to_string()), ep(text));
    }
}

#[test]
fn bad_endpoints_name_themselves_and_what_is_wrong() {
    use crate::ports::PortErrorKind::{NotANumber, OutOfRange};
    use crate::target::TargetErrorKind::{UnknownZone, ZoneWithoutIpv6};
    use EndpointErrorKind::*;
    for (text, kind) in [
        ("", Empty),
        ("0", Port(OutOfRange)),
        ("70000", Port(OutOfRange)),
        (":80", EmptyHost),
        ("host:", Port(NotANumber)),
        ("host:0", Port(OutOfRange)),
        ("host:70000", Port(OutOfRange)),
        ("::1:80", Ipv6WithoutBrackets),
        ("[::1]", BadBrackets),
        ("[::1]:", Port(NotANumber)),
        ("[1.2.3.4]:80", BadIpv6),
        ("[fe80::1]:80", LinkLocal),
        ("udp:[fe80::1]:53", LinkLocal),
        ("[::1%lo]:80", ZoneNotLinkLocal),
        ("[2001:db8::1%1]:80", ZoneNotLinkLocal),
        (
            "[fe80::1%nk-no-such0]:80",
            Zone(UnknownZone("nk-no-such0".into())),
        ),
        ("[fe80::1%]:80", Zone(UnknownZone(String::new()))),
        ("[fe80::1%0]:80", Zone(UnknownZone("0".into()))),
        ("[1.2.3.4%lo]:80", Zone(ZoneWithoutIpv6)),
        ("[fe80::x%lo]:80", BadIpv6),
        ("[fe80::1%lo]", BadBrackets),
        ("1.2.3.300:80", BadIpv4),
        ("bad_host!:80", BadHostName),
        ("unix:", EmptyUnixPath),
        ("unix:@", EmptyAbstractName),
        ("exec:", EmptyExec),
        ("exec:   ", EmptyExec),
        ("exec:''", EmptyExec),
        ("exec:\"\" -x", EmptyExec),
        ("exec:'unterminated", ExecQuotes),
        ("host", MissingPort),
        ("[::1]:x", Port(NotANumber)),
    ] {
        let err = text.parse::<Endpoint>().expect_err(text);
        assert_eq!(err.input, text, "{err}");
        assert_eq!(err.kind, kind, "{text}");
    }
    let long = format!("unix:/{}", "a".repeat(120));
    let err = long.parse::<Endpoint>().unwrap_err();
    assert_eq!(err.kind, UnixPathTooLong(121));
    let err = Endpoint::parse_listen("exec:cat").unwrap_err();
    assert_eq!(err.kind, ExecListen);
    assert_eq!(
        err.to_string(),
        "exec:cat: exec: endpoints can only be targets"
    );
}

#[test]
fn other_schemes_are_named_as_such() {
    for (text, name) in [
        ("tcp:h.test:80", "tcp"),
        ("tls:h.test:443", "tls"),
        ("foo://h", "foo"),
        ("x+y:a:1", "x+y"),
        ("HTTP:80", "HTTP"),
    ] {
        let err = text.parse::<Endpoint>().expect_err(text);
        assert!(
            matches!(&err.kind, EndpointErrorKind::UnknownScheme { scheme, .. } if scheme == name),
            "{err}"
        );
        assert!(Endpoint::parse_listen(text).is_err());
    }
    let tls = "tls:h.test:443".parse::<Endpoint>().unwrap_err();
    assert_eq!(
        tls.to_string(),
        "tls:h.test:443: unknown endpoint scheme 'tls:'; \
         expected PORT, HOST:PORT, [V6]:PORT, unix:PATH, unix:@NAME or exec:COMMAND"
    );
    for text in ["fe80::1:80", "abcd:1234::1:80", "host:x", "localhost:80"] {
        let scheme = text
            .parse::<Endpoint>()
            .is_err_and(|e| matches!(e.kind, EndpointErrorKind::UnknownScheme { .. }));
        assert!(!scheme, "{text}");
    }
}

/// The loopback interface's index: the one interface every namespace has.
fn lo() -> u32 {
    nix::net::if_::if_nametoindex("lo").unwrap()
}

#[test]
fn zones_name_an_interface_by_name_or_index() {
    let zoned = Host::Zoned("fe80::1".parse().unwrap(), lo());
    for text in ["[fe80::1%lo]:80", &format!("[fe80::1%{}]:80", lo())] {
        assert_eq!(
            ep(text),
            Endpoint::Tcp {
                host: zoned.clone(),
                port: 80
            },
            "{text}"
        );
    }
    assert_eq!(
        lep("udp:[fe80::1%lo]:0"),
        Endpoint::Udp {
            host: zoned.clone(),
            port: 0
        }
    );
}

#[test]
fn zoned_endpoints_show_the_interface_name_and_round_trip() {
    let index = format!("[fe80::1%{}]:80", lo());
    for (text, shown) in [
        ("[fe80::1%lo]:80", "[fe80::1%lo]:80"),
        (index.as_str(), "[fe80::1%lo]:80"),
        ("udp:[fe80::a:b%lo]:53", "udp:[fe80::a:b%lo]:53"),
    ] {
        assert_eq!(ep(text).to_string(), shown);
        assert_eq!(ep(shown), ep(text));
    }
}

#[test]
fn every_socket_address_of_a_zoned_endpoint_carries_the_scope_id() {
    let endpoint = ep("[fe80::1%lo]:80");
    let addrs = runtime().block_on(endpoint.resolve()).unwrap();
    let want: SocketAddr =
        std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 80, 0, lo()).into();
    assert_eq!(addrs, vec![want]);
    // And back: a socket address with a scope id is a zoned endpoint.
    assert_eq!(Endpoint::tcp(want), endpoint);
    assert_eq!(Endpoint::tcp(want).to_string(), "[fe80::1%lo]:80");
    let plain: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
    assert_eq!(Host::of(plain), Host::Ip(plain.ip()));
    let scoped: SocketAddr =
        std::net::SocketAddrV6::new("2001:db8::1".parse().unwrap(), 80, 0, lo()).into();
    assert_eq!(Host::of(scoped), Host::Ip(plain.ip()));
}

#[test]
fn link_local_without_a_zone_says_to_add_one() {
    let err = "[fe80::1]:80".parse::<Endpoint>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "[fe80::1]:80: a link-local address needs its interface: add %IFACE, e.g. [fe80::1%eth0]:80"
    );
    let err = "[fe80::1%nk-no-such0]:80".parse::<Endpoint>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "[fe80::1%nk-no-such0]:80: no interface nk-no-such0 for the zone"
    );
}

#[test]
fn a_link_local_address_without_its_zone_is_refused_before_any_packet() {
    // What a name resolving to a link-local address gives: no scope id. No socket is
    // connected or bound: the check comes first.
    let bare: SocketAddr = "[fe80::1]:80".parse().unwrap();
    let err = runtime()
        .block_on(Endpoint::tcp(bare).connect(Duration::from_secs(1)))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("fe80::1 is link-local and has no interface (a name gives none)"),
        "{err}"
    );
    let err = runtime()
        .block_on(Endpoint::tcp(bare).listen())
        .unwrap_err();
    assert!(err.to_string().contains("[fe80::1%IFACE]:80"), "{err}");
}

#[test]
fn abstract_names_take_107_bytes_as_the_kernel_does() {
    let longest = format!("unix:@{}", "a".repeat(MAX_ABSTRACT_NAME));
    assert_eq!(ep(&longest), Endpoint::Abstract("a".repeat(107)));
    let over = format!("unix:@{}", "a".repeat(108));
    let err = over.parse::<Endpoint>().unwrap_err();
    assert_eq!(err.kind, EndpointErrorKind::AbstractNameTooLong(108));
}

#[test]
fn unix_paths_take_108_bytes_as_the_kernel_does() {
    let longest = format!("/{}", "a".repeat(107));
    assert_eq!(
        ep(&format!("unix:{longest}")),
        Endpoint::Unix(longest.into())
    );
    let over = format!("unix:/{}", "a".repeat(108));
    let err = over.parse::<Endpoint>().unwrap_err();
    assert_eq!(err.kind, EndpointErrorKind::UnixPathTooLong(109));
    assert_eq!(
        err.to_string(),
        format!(
            "{over}: unix socket path of 109 bytes: longer than 108 bytes, the kernel's \
             limit (sun_path)"
        )
    );
}

#[test]
fn udp_endpoints_take_the_tcp_forms_after_the_scheme() {
    let v4 = Host::Ip("127.0.0.1".parse().unwrap());
    for (text, host, port) in [
        ("udp:53", v4.clone(), 53),
        ("udp:127.0.0.1:5353", v4, 5353),
        ("udp:[::1]:53", Host::Ip("::1".parse().unwrap()), 53),
        ("udp:dns.test:53", Host::Name("dns.test".into()), 53),
    ] {
        let endpoint = ep(text);
        assert_eq!(endpoint, Endpoint::Udp { host, port }, "{text}");
        assert!(endpoint.is_udp());
        assert_eq!(ep(&endpoint.to_string()), endpoint, "{text}");
    }
    assert_eq!(ep("udp:53").to_string(), "udp:127.0.0.1:53");
    assert_eq!(
        Endpoint::parse_listen("udp:0").unwrap(),
        Endpoint::udp("127.0.0.1:0".parse().unwrap())
    );
    for (text, kind) in [
        ("udp:", EndpointErrorKind::Empty),
        (
            "udp:0",
            EndpointErrorKind::Port(crate::ports::PortErrorKind::OutOfRange),
        ),
        ("udp:::1:53", EndpointErrorKind::Ipv6WithoutBrackets),
        ("udp:[::1]53", EndpointErrorKind::BadBrackets),
        ("udp:host", EndpointErrorKind::MissingPort),
        ("udp:1.2.3.4.5:53", EndpointErrorKind::BadIpv4),
    ] {
        let err = text.parse::<Endpoint>().expect_err(text);
        assert_eq!((err.input.as_str(), &err.kind), (text, &kind));
    }
    let err = ep("udp:53").stream_only("udp:53").unwrap_err();
    assert_eq!(
        err.to_string(),
        "udp:53: udp: endpoints are for forward only; expected PORT, HOST:PORT, [V6]:PORT, \
         unix:PATH or unix:@NAME"
    );
}

proptest! {
    #[test]
    fn ports_round_trip(port in 1u16..=65535) {
        prop_assert_eq!(ep(&port.to_string()), Endpoint::tcp(([127, 0, 0, 1], port).into()));
        let v6 = format!("[2001:db8::1]:{port}");
        prop_assert_eq!(ep(&v6).to_string(), v6);
    }

    #[test]
    fn never_panics(text in "[\\[\\]:a-z0-9@/.%' -]{0,24}") {
        let _ = text.parse::<Endpoint>();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn tcp_listen_connect_v4_and_v6() {
    runtime().block_on(async {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let listener = Endpoint::parse_listen(bind)
                .unwrap()
                .listen()
                .await
                .unwrap();
            let addr: SocketAddr = listener.local_addr().parse().unwrap();
            let target = Endpoint::tcp(addr);
            let (client, accepted) =
                tokio::join!(target.connect(Duration::from_secs(2)), listener.accept());
            assert!(matches!(client.unwrap(), Stream::Tcp(_)));
            assert!(accepted.is_ok());
        }
    });
}

#[test]
fn names_try_every_address() {
    runtime().block_on(async {
        // A v6-only listener: `localhost` must still connect if it resolves to ::1 too.
        let listener = lep("[::1]:0").listen().await.unwrap();
        let port: SocketAddr = listener.local_addr().parse().unwrap();
        let target = ep(&format!("localhost:{}", port.port()));
        let addrs = target.resolve().await.unwrap();
        assert!(
            addrs.iter().any(|a| a.is_ipv6()) && addrs.iter().any(|a| a.is_ipv4()),
            "{addrs:?}"
        );
        assert!(target.connect(Duration::from_secs(2)).await.is_ok());
    });
}

#[test]
fn refused_connect_names_the_endpoint() {
    runtime().block_on(async {
        // Bound but not listening, and held: connects are refused, and nothing else can take
        // the port meanwhile (a listener bound then dropped could be replaced by another's).
        let held =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        held.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let addr = held.local_addr().unwrap().as_socket().unwrap().to_string();
        let err = ep(&addr).connect(Duration::from_secs(2)).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("connect to {addr}: connection refused")),
            "{err}"
        );
    });
}

#[test]
fn address_in_use_is_an_environment_error() {
    runtime().block_on(async {
        let first = lep("127.0.0.1:0").listen().await.unwrap();
        let err = ep(&first.local_addr()).listen().await.unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::Environment);
        assert!(
            matches!(&err, crate::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse),
            "{err}"
        );
    });
}

#[test]
fn unix_sockets_path_and_abstract() {
    runtime().block_on(async {
        let dir = std::env::temp_dir().join(format!("netkit-ep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let text = format!("unix:{}", path.display());
        let listener = ep(&text).listen().await.unwrap();
        assert_eq!(listener.local_addr(), text);
        // A live socket is never taken over.
        let err = ep(&text).listen().await.unwrap_err();
        assert!(
            matches!(&err, crate::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse),
            "{err}"
        );
        let target = ep(&text);
        let (client, _) = tokio::join!(target.connect(Duration::from_secs(1)), listener.accept());
        assert!(client.is_ok());
        drop(listener);
        assert!(!path.exists(), "socket file removed on drop");

        let name = format!("unix:@netkit-test-{}", std::process::id());
        let listener = ep(&name).listen().await.unwrap();
        assert_eq!(listener.local_addr(), name);
        let target = ep(&name);
        let (client, _) = tokio::join!(target.connect(Duration::from_secs(1)), listener.accept());
        assert!(client.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// A Unix peer that closed with bytes it had not read is gone abortively, its `ECONNRESET`
/// left for the read after the bytes it sent; one that read everything before it closed is
/// not: its end is a clean end of file.
#[test]
fn a_unix_peer_closing_with_bytes_unread_is_gone_abortively() {
    use std::io::{Read, Write};
    runtime().block_on(async {
        for unread in [true, false] {
            let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            let stream = Stream::Unix(tokio::net::UnixStream::from_std(ours).unwrap());
            stream.write_ready().await.unwrap();
            assert_eq!(stream.try_write(b"hello").unwrap(), 5);
            theirs.write_all(b"bye").unwrap();
            if !unread {
                theirs.read_exact(&mut [0u8; 5]).unwrap();
            }
            drop(theirs);
            assert_eq!(stream.gone_abortively(), unread, "unread: {unread}");
            if unread {
                tokio::time::timeout(Duration::from_secs(20), stream.aborted())
                    .await
                    .expect("aborted");
            }
            let mut buf = [0u8; 8];
            stream.read_ready().await.unwrap();
            assert_eq!(
                stream.try_read(&mut buf).unwrap(),
                3,
                "the bytes come first"
            );
            let end = stream.try_read(&mut buf).map_err(|e| e.kind());
            let expected = if unread {
                Err(std::io::ErrorKind::ConnectionReset)
            } else {
                Ok(0)
            };
            assert_eq!(end, expected, "unread: {unread}");
        }
    });
}

#[test]
fn stale_socket_file_is_replaced_but_regular_files_are_not() {
    runtime().block_on(async {
        let dir = std::env::temp_dir().join(format!("netkit-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stale.sock");
        // A socket file whose server is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let text = format!("unix:{}", path.display());
        assert!(ep(&text).listen().await.is_ok());

        let file = dir.join("plain");
        std::fs::write(&file, b"keep me").unwrap();
        let err = ep(&format!("unix:{}", file.display()))
            .listen()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, crate::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

fn lep(text: &str) -> Endpoint {
    Endpoint::parse_listen(text).expect(text)
}

#[test]
fn listen_endpoints_accept_port_zero() {
    assert_eq!(lep("0"), Endpoint::tcp("127.0.0.1:0".parse().unwrap()));
    assert_eq!(lep("[::1]:0"), Endpoint::tcp("[::1]:0".parse().unwrap()));
    assert_eq!(lep("8080"), ep("8080"));
    assert!(Endpoint::parse_listen("exec:cat").is_err());
    assert!(Endpoint::parse_listen("70000").is_err());
    assert!("127.0.0.1:0".parse::<Endpoint>().is_err());
}
