//! Speed and duplex, from the ethtool generic-netlink family (`ETHTOOL_MSG_LINKMODES_GET`,
//! what `ethtool DEV` shows): answered by the driver, in the caller's network namespace.
//!
//! Best effort by nature: drivers without link settings (loopback, a bridge without ports)
//! answer nothing or "unknown", and a kernel without ethtool netlink (before 5.6) has no
//! family to ask; then speed and duplex are none. Nothing is read from /sys, which may belong
//! to another namespace (`nsenter --net` does not remount it).

use std::collections::BTreeMap;
use std::io;

use netlink_packet_core::{
    parse_u32, parse_u8, DecodeError, DefaultNla, Emitable, NlasIterator, ParseableParametrized,
    NLA_F_NESTED,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;

use super::netlink::Netlink;

/// The driver's `SPEED_UNKNOWN`.
const SPEED_UNKNOWN: u32 = u32::MAX;

/// `ETHTOOL_MSG_LINKMODES_GET`, and its reply's number (`ETHTOOL_MSG_LINKMODES_GET_REPLY`).
const LINKMODES_GET: u8 = 4;
/// `ETHTOOL_GENL_VERSION`.
const GENL_VERSION: u8 = 1;
/// `ETHTOOL_A_LINKMODES_HEADER`, `_SPEED`, `_DUPLEX`.
const A_LINKMODES_HEADER: u16 = 1;
const A_LINKMODES_SPEED: u16 = 5;
const A_LINKMODES_DUPLEX: u16 = 6;
/// `ETHTOOL_A_HEADER_DEV_INDEX`, `_FLAGS`.
const A_HEADER_DEV_INDEX: u16 = 1;
const A_HEADER_FLAGS: u16 = 3;
/// `ETHTOOL_FLAG_COMPACT_BITSETS`: the link-mode bitsets of a reply as bits, not as a nest
/// of every mode's name, which neither side needs here.
const FLAG_COMPACT_BITSETS: u32 = 1;
/// The kernel's `DUPLEX_HALF`, `DUPLEX_FULL`.
const DUPLEX_HALF: u8 = 0;
const DUPLEX_FULL: u8 = 1;

/// What a driver says about its link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkMode {
    /// Mb/s, when known.
    pub(crate) speed_mbps: Option<u32>,
    /// `full` or `half`, when known.
    pub(crate) duplex: Option<String>,
}

/// One link-modes message: a request (for one device, or none: a dump), or a reply, of which
/// only the device, speed and duplex are read. Its own few attributes rather than the ethtool
/// crate's whole decoder, which formats a debug string of every attribute it parses (a
/// quarter of listing two thousand links went there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct LinkModes {
    index: Option<u32>,
    mode: LinkMode,
}

impl GenlFamily for LinkModes {
    fn family_name() -> &'static str {
        "ethtool"
    }

    fn command(&self) -> u8 {
        LINKMODES_GET
    }

    fn version(&self) -> u8 {
        GENL_VERSION
    }
}

impl LinkModes {
    /// A request's attributes: the header nest, with the device when one is asked for.
    fn attributes(&self) -> [DefaultNla; 1] {
        let flags = DefaultNla::new(A_HEADER_FLAGS, FLAG_COMPACT_BITSETS.to_ne_bytes().to_vec());
        let device = self
            .index
            .map(|index| DefaultNla::new(A_HEADER_DEV_INDEX, index.to_ne_bytes().to_vec()));
        let header: Vec<DefaultNla> = device.into_iter().chain([flags]).collect();
        let mut nest = vec![0; header.as_slice().buffer_len()];
        header.as_slice().emit(&mut nest);
        [DefaultNla::new(A_LINKMODES_HEADER | NLA_F_NESTED, nest)]
    }
}

impl Emitable for LinkModes {
    fn buffer_len(&self) -> usize {
        self.attributes().as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attributes().as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for LinkModes {
    fn parse_with_param(buf: &[u8], _: GenlHeader) -> Result<Self, DecodeError> {
        let mut message = LinkModes::default();
        for nla in NlasIterator::new(buf) {
            let nla = nla?;
            match nla.kind() {
                A_LINKMODES_HEADER => {
                    for inner in NlasIterator::new(nla.value()) {
                        let inner = inner?;
                        if inner.kind() == A_HEADER_DEV_INDEX {
                            message.index = Some(parse_u32(inner.value())?);
                        }
                    }
                }
                A_LINKMODES_SPEED => {
                    let speed = parse_u32(nla.value())?;
                    message.mode.speed_mbps = (speed != SPEED_UNKNOWN).then_some(speed);
                }
                A_LINKMODES_DUPLEX => message.mode.duplex = duplex_name(parse_u8(nla.value())?),
                _ => {}
            }
        }
        Ok(message)
    }
}

/// Speed and duplex of the links `indices` that report them, by interface index: one dump
/// (one request for a single link).
pub(crate) fn link_modes(indices: &[u32]) -> BTreeMap<u32, LinkMode> {
    let only = match indices {
        [index] => Some(*index),
        _ => None,
    };
    query(only).unwrap_or_else(|err| {
        tracing::debug!("ethtool link modes: {err}");
        BTreeMap::new()
    })
}

fn query(index: Option<u32>) -> io::Result<BTreeMap<u32, LinkMode>> {
    let mut genl = Netlink::open(NETLINK_GENERIC)?;
    let family = family_id(&mut genl, LinkModes::family_name())?;
    let mut request = GenlMessage::from_payload(LinkModes {
        index,
        mode: LinkMode::default(),
    });
    request.set_resolved_family_id(family);
    let modes = match index {
        None => genl.dump(&request, |reply| link_mode(reply.payload))?,
        Some(_) => genl
            .get(request)?
            .and_then(|reply| link_mode(reply.payload))
            .into_iter()
            .collect(),
    };
    Ok(modes.into_iter().collect())
}

/// The id the kernel gave a generic-netlink family.
fn family_id(genl: &mut Netlink, name: &str) -> io::Result<u16> {
    let request = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
    });
    let reply = genl.get(request)?;
    reply
        .iter()
        .flat_map(|reply| &reply.payload.nlas)
        .find_map(|nla| match nla {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no ethtool netlink family"))
}

/// The interface index and link mode of one reply.
fn link_mode(reply: LinkModes) -> Option<(u32, LinkMode)> {
    Some((reply.index?, reply.mode))
}

fn duplex_name(duplex: u8) -> Option<String> {
    match duplex {
        DUPLEX_FULL => Some("full".to_string()),
        DUPLEX_HALF => Some("half".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(kind: u16, value: &[u8]) -> DefaultNla {
        DefaultNla::new(kind, value.to_vec())
    }

    fn bytes(nlas: &[DefaultNla]) -> Vec<u8> {
        let mut bytes = vec![0; nlas.buffer_len()];
        nlas.emit(&mut bytes);
        bytes
    }

    fn reply(nlas: &[DefaultNla]) -> Result<LinkModes, DecodeError> {
        let header = GenlHeader {
            cmd: LINKMODES_GET,
            version: GENL_VERSION,
        };
        LinkModes::parse_with_param(&bytes(nlas), header)
    }

    #[test]
    fn a_reply_gives_speed_and_duplex_of_its_device() {
        // A name that is not UTF-8 and a link-mode bitset are there, and not in the way.
        let header = bytes(&[
            attribute(A_HEADER_DEV_INDEX, &4u32.to_ne_bytes()),
            attribute(2, b"bad\xff\0"),
        ]);
        let got = reply(&[
            attribute(A_LINKMODES_HEADER | NLA_F_NESTED, &header),
            attribute(3 | NLA_F_NESTED, &bytes(&[attribute(2, &[0; 12])])),
            attribute(A_LINKMODES_SPEED, &10_000u32.to_ne_bytes()),
            attribute(A_LINKMODES_DUPLEX, &[DUPLEX_FULL]),
        ]);
        let want = LinkMode {
            speed_mbps: Some(10_000),
            duplex: Some("full".into()),
        };
        assert_eq!(link_mode(got.unwrap()), Some((4, want)));
    }

    #[test]
    fn unknown_speed_and_duplex_are_none() {
        let header = bytes(&[attribute(A_HEADER_DEV_INDEX, &2u32.to_ne_bytes())]);
        let got = reply(&[
            attribute(A_LINKMODES_HEADER | NLA_F_NESTED, &header),
            attribute(A_LINKMODES_SPEED, &SPEED_UNKNOWN.to_ne_bytes()),
            attribute(A_LINKMODES_DUPLEX, &[0xff]),
        ]);
        assert_eq!(link_mode(got.unwrap()), Some((2, LinkMode::default())));
        assert_eq!(link_mode(reply(&[]).unwrap()), None);
    }

    #[test]
    fn a_malformed_reply_is_an_error() {
        assert!(reply(&[attribute(A_LINKMODES_SPEED, &[1, 2])]).is_err());
    }

    #[test]
    fn a_request_names_its_device_and_asks_for_compact_bitsets() {
        let request = LinkModes {
            index: Some(7),
            mode: LinkMode::default(),
        };
        let mut bytes = vec![0; request.buffer_len()];
        request.emit(&mut bytes);
        let header = NlasIterator::new(&bytes[..]).next().unwrap().unwrap();
        assert_eq!(header.kind(), A_LINKMODES_HEADER);
        assert!(header.nested_flag());
        let inner: Vec<_> = NlasIterator::new(header.value())
            .map(|nla| nla.map(|nla| (nla.kind(), nla.value().to_vec())).unwrap())
            .collect();
        let want = vec![
            (A_HEADER_DEV_INDEX, 7u32.to_ne_bytes().to_vec()),
            (A_HEADER_FLAGS, FLAG_COMPACT_BITSETS.to_ne_bytes().to_vec()),
        ];
        assert_eq!(inner, want);
    }

    #[test]
    fn loopback_reports_no_speed() {
        // lo has no link settings: the dump leaves it out, a direct question is refused.
        assert!(!link_modes(&[1, 2]).contains_key(&1));
        assert!(link_modes(&[1]).is_empty());
    }
}
