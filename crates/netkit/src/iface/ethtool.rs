//! Speed and duplex, from the ethtool generic-netlink family (`ETHTOOL_MSG_LINKMODES_GET`,
//! what `ethtool DEV` shows): answered by the driver, in the caller's network namespace.
//!
//! Best effort by nature: drivers without link settings (loopback, a bridge without ports)
//! answer nothing or "unknown", and a kernel without ethtool netlink (before 5.6) has no
//! family to ask; then speed and duplex are none. Nothing is read from /sys, which may belong
//! to another namespace (`nsenter --net` does not remount it).

use std::collections::BTreeMap;
use std::io;

use ethtool::{
    EthtoolAttr, EthtoolCmd, EthtoolHeader, EthtoolLinkModeAttr, EthtoolLinkModeDuplex,
    EthtoolMessage,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_sys::protocols::NETLINK_GENERIC;

use super::netlink::Netlink;

/// The driver's `SPEED_UNKNOWN`.
const SPEED_UNKNOWN: u32 = u32::MAX;

/// What a driver says about its link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkMode {
    /// Mb/s, when known.
    pub(crate) speed_mbps: Option<u32>,
    /// `full` or `half`, when known.
    pub(crate) duplex: Option<String>,
}

/// Speed and duplex of the links `indices` that report them, by interface index: one dump
/// (one request for a single link). When a reply of the dump cannot be decoded (a name that is
/// not UTF-8 in its header), one request per link, so that only that link goes without.
pub(crate) fn link_modes(indices: &[u32]) -> BTreeMap<u32, LinkMode> {
    if let [index] = indices {
        return asked(Some(*index));
    }
    match query(None) {
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            tracing::debug!("ethtool link modes: {err}; asking link by link");
            indices.iter().flat_map(|i| asked(Some(*i))).collect()
        }
        modes => modes.unwrap_or_else(|err| {
            tracing::debug!("ethtool link modes: {err}");
            BTreeMap::new()
        }),
    }
}

/// What one query answered, nothing when it failed.
fn asked(index: Option<u32>) -> BTreeMap<u32, LinkMode> {
    query(index).unwrap_or_else(|err| {
        tracing::debug!("ethtool link modes: {err}");
        BTreeMap::new()
    })
}

fn query(index: Option<u32>) -> io::Result<BTreeMap<u32, LinkMode>> {
    let mut genl = Netlink::open(NETLINK_GENERIC)?;
    let family = family_id(&mut genl, "ethtool")?;
    let header = index.map(EthtoolHeader::DevIndex).into_iter().collect();
    let mut request = GenlMessage::from_payload(EthtoolMessage {
        cmd: EthtoolCmd::LinkModeGet,
        nlas: vec![EthtoolAttr::LinkMode(EthtoolLinkModeAttr::Header(header))],
    });
    request.set_resolved_family_id(family);
    let modes = match index {
        None => genl.dump(&request, |reply| link_mode(&reply.payload))?,
        Some(_) => genl
            .get(request)?
            .and_then(|reply| link_mode(&reply.payload))
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
fn link_mode(reply: &EthtoolMessage) -> Option<(u32, LinkMode)> {
    let mut index = None;
    let mut mode = LinkMode::default();
    for nla in &reply.nlas {
        match nla {
            EthtoolAttr::LinkMode(EthtoolLinkModeAttr::Header(header)) => {
                index = header.iter().find_map(|h| match h {
                    EthtoolHeader::DevIndex(i) => Some(*i),
                    _ => None,
                });
            }
            EthtoolAttr::LinkMode(EthtoolLinkModeAttr::Speed(speed)) => {
                mode.speed_mbps = (*speed != SPEED_UNKNOWN).then_some(*speed);
            }
            EthtoolAttr::LinkMode(EthtoolLinkModeAttr::Duplex(duplex)) => {
                mode.duplex = duplex_name(duplex);
            }
            _ => {}
        }
    }
    Some((index?, mode))
}

fn duplex_name(duplex: &EthtoolLinkModeDuplex) -> Option<String> {
    match duplex {
        EthtoolLinkModeDuplex::Full => Some("full".to_string()),
        EthtoolLinkModeDuplex::Half => Some("half".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(nlas: Vec<EthtoolLinkModeAttr>) -> EthtoolMessage {
        EthtoolMessage {
            cmd: EthtoolCmd::LinkModeGetReply,
            nlas: nlas.into_iter().map(EthtoolAttr::LinkMode).collect(),
        }
    }

    #[test]
    fn a_reply_gives_speed_and_duplex_of_its_device() {
        let got = link_mode(&reply(vec![
            EthtoolLinkModeAttr::Header(vec![
                EthtoolHeader::DevIndex(4),
                EthtoolHeader::DevName("v0".into()),
            ]),
            EthtoolLinkModeAttr::Speed(10_000),
            EthtoolLinkModeAttr::Duplex(EthtoolLinkModeDuplex::Full),
        ]));
        let want = LinkMode {
            speed_mbps: Some(10_000),
            duplex: Some("full".into()),
        };
        assert_eq!(got, Some((4, want)));
    }

    #[test]
    fn unknown_speed_and_duplex_are_none() {
        let got = link_mode(&reply(vec![
            EthtoolLinkModeAttr::Header(vec![EthtoolHeader::DevIndex(2)]),
            EthtoolLinkModeAttr::Speed(SPEED_UNKNOWN),
            EthtoolLinkModeAttr::Duplex(EthtoolLinkModeDuplex::Unknown),
        ]));
        assert_eq!(got, Some((2, LinkMode::default())));
        assert_eq!(link_mode(&reply(vec![])), None);
    }

    #[test]
    fn loopback_reports_no_speed() {
        // lo has no link settings: the dump leaves it out, a direct question is refused.
        assert!(!link_modes(&[1, 2]).contains_key(&1));
        assert!(link_modes(&[1]).is_empty());
    }
}
