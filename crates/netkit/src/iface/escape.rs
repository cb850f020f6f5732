//! Names that are not UTF-8. The kernel takes any bytes in an interface name but `/`, `:`,
//! whitespace and NUL, and any in an alias, an alternative name or an address label; `ip`
//! shows them as they are. The rtnetlink decoder refuses a whole message (and so a whole dump)
//! for one such string, which would blind every command to every interface. So a message the
//! decoder refused is rewritten with its strings escaped — valid UTF-8 kept, each other byte
//! as `\xNN` — and decoded again; names given on the command line are escaped the same way,
//! so that `iface show` finds the interface by the bytes its name has.

/// Netlink message header: length, type, flags, sequence, port.
const HEADER: usize = 16;
/// `RTM_NEWLINK`, `RTM_DELLINK`.
const LINK_TYPES: [u16; 2] = [16, 17];
/// `RTM_NEWADDR`, `RTM_DELADDR`.
const ADDR_TYPES: [u16; 2] = [20, 21];
/// `struct ifinfomsg`.
const IFINFOMSG: usize = 16;
/// `struct ifaddrmsg`.
const IFADDRMSG: usize = 8;
/// The attribute type without its nested and byte-order flags.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Which attributes of a message are strings, and which nest more.
struct Strings {
    /// String attributes.
    strings: &'static [u16],
    /// Nested attributes, with the string attributes inside them.
    nested: &'static [(u16, &'static [u16])],
}

/// `IFLA_IFNAME`, `IFLA_QDISC`, `IFLA_IFALIAS`; `IFLA_PROP_LIST` holding `IFLA_ALT_IFNAME`.
const LINK_STRINGS: Strings = Strings {
    strings: &[3, 6, 20],
    nested: &[(52, &[53])],
};
/// `IFA_LABEL`.
const ADDR_STRINGS: Strings = Strings {
    strings: &[3],
    nested: &[],
};

/// `bytes` as text: valid UTF-8 as it is, every other byte as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    crate::text::escape_non_utf8(bytes)
}

/// One rtnetlink link or address message (header included) with the bytes of its string
/// attributes that are not UTF-8 escaped; `None` for another message, or one too short or
/// malformed to rewrite.
pub(crate) fn route_message(message: &[u8]) -> Option<Vec<u8>> {
    let kind = u16::from_ne_bytes(message.get(4..6)?.try_into().ok()?);
    let len = u32::from_ne_bytes(message.get(0..4)?.try_into().ok()?) as usize;
    let message = message.get(..len)?;
    let (fixed, strings) = match kind {
        k if LINK_TYPES.contains(&k) => (IFINFOMSG, &LINK_STRINGS),
        k if ADDR_TYPES.contains(&k) => (IFADDRMSG, &ADDR_STRINGS),
        _ => return None,
    };
    let start = HEADER + fixed;
    let mut out = message.get(..start)?.to_vec();
    let attrs = rewrite(&message[start..], strings.strings, strings.nested)?;
    out.extend_from_slice(&attrs);
    let total = u32::try_from(out.len()).ok()?;
    out[0..4].copy_from_slice(&total.to_ne_bytes());
    Some(out)
}

/// A run of attributes with the strings among them escaped.
fn rewrite(mut attrs: &[u8], strings: &[u16], nested: &[(u16, &[u16])]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(attrs.len() + 16);
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let raw_kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        let kind = raw_kind & NLA_TYPE_MASK;
        let payload = attrs.get(4..len)?;
        let payload = if strings.contains(&kind) {
            escaped_string(payload)
        } else if let Some((_, inner)) = nested.iter().find(|(k, _)| *k == kind) {
            rewrite(payload, inner, &[])?
        } else {
            payload.to_vec()
        };
        push_attr(&mut out, raw_kind, &payload)?;
        attrs = attrs.get(len.next_multiple_of(4).min(attrs.len())..)?;
    }
    Some(out)
}

/// A NUL-terminated string attribute's payload, escaped and NUL-terminated again.
fn escaped_string(payload: &[u8]) -> Vec<u8> {
    let text = payload.split(|b| *b == 0).next().unwrap_or_default();
    let mut escaped = escape_bytes(text).into_bytes();
    escaped.push(0);
    escaped
}

/// Appends one attribute, padded to 4 bytes.
fn push_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) -> Option<()> {
    let len = u16::try_from(4 + payload.len()).ok()?;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_stays_and_other_bytes_are_escaped() {
        assert_eq!(escape_bytes(b"eth0"), "eth0");
        assert_eq!(escape_bytes("ué".as_bytes()), "ué");
        assert_eq!(escape_bytes(b"bad\xff"), "bad\\xff");
        assert_eq!(escape_bytes(b"\xc3(x\xe2\x82"), "\\xc3(x\\xe2\\x82");
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_attr(&mut out, kind, payload).unwrap();
        out
    }

    fn message(kind: u16, fixed: usize, attrs: &[u8]) -> Vec<u8> {
        let mut out = vec![0; HEADER + fixed];
        out[4..6].copy_from_slice(&kind.to_ne_bytes());
        out[HEADER] = 0xaa;
        out.extend_from_slice(attrs);
        let len = out.len() as u32;
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out
    }

    #[test]
    fn a_link_messages_names_are_escaped_and_the_rest_kept() {
        let mtu = attr(4, &1500u32.to_ne_bytes());
        let alt = attr(0x8000 | 52, &attr(53, b"y\xff\0"));
        let attrs = [attr(3, b"bad\xff\0"), mtu.clone(), alt].concat();
        let got = route_message(&message(16, IFINFOMSG, &attrs)).unwrap();
        let alt = attr(0x8000 | 52, &attr(53, b"y\\xff\0"));
        let want = [attr(3, b"bad\\xff\0"), mtu, alt].concat();
        assert_eq!(got, message(16, IFINFOMSG, &want));
    }

    #[test]
    fn an_address_label_is_escaped_and_other_messages_are_left() {
        let attrs = attr(3, b"v0:\xff\0");
        let got = route_message(&message(20, IFADDRMSG, &attrs)).unwrap();
        assert_eq!(got, message(20, IFADDRMSG, &attr(3, b"v0:\\xff\0")));
        assert_eq!(route_message(&message(24, 12, &attrs)), None);
        assert_eq!(route_message(&[1, 2, 3]), None);
    }
}
