//! Netlink request and reply over a blocking socket: one request out, its replies back (a
//! whole dump, or one answer), kernel errors turned into `io::Error`s. Generic over the
//! message types of the protocol, so rtnetlink and generic netlink (ethtool) share it. The
//! socket lives in the calling thread's network namespace, which is what makes every answer
//! that namespace's, whatever is mounted on /sys.

use std::fmt::Debug;
use std::io;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use nix::libc;

/// How often a dump that a concurrent change interrupted is started again before its last
/// answer is taken as it is (`ip` takes the first, with a warning).
const DUMP_TRIES: usize = 4;

/// The least receive buffer: the kernel sizes dump datagrams by the reader's buffer, and
/// 32 KiB (iproute2's choice too) packs hundreds of addresses into each.
const RECEIVE_FLOOR: usize = 32 * 1024;

/// Rewrites a message the decoder refused into one it may take (`None`: nothing to do).
pub(crate) type Repair = fn(&[u8]) -> Option<Vec<u8>>;

/// A bound netlink socket of one protocol, talking to the kernel.
#[derive(Debug)]
pub(crate) struct Netlink {
    socket: Socket,
    seq: u32,
    buffer: Vec<u8>,
    repair: Repair,
}

/// No repair: what the decoder refuses is an error.
fn no_repair(_: &[u8]) -> Option<Vec<u8>> {
    None
}

/// The repair of the messages of `protocol`: rtnetlink's strings that are not UTF-8 are
/// escaped ([`super::escape`]).
pub(crate) fn repair_for(protocol: isize) -> Repair {
    match protocol {
        netlink_sys::protocols::NETLINK_ROUTE => super::escape::route_message,
        _ => no_repair,
    }
}

/// The replies to one request, and whether the kernel flagged the dump as inconsistent.
struct Replies<I> {
    messages: Vec<I>,
    interrupted: bool,
}

impl Netlink {
    /// Opens and binds a socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_GENERIC`).
    pub(crate) fn open(protocol: isize) -> io::Result<Netlink> {
        let mut socket = Socket::new(protocol)?;
        socket.bind_auto()?;
        Ok(Netlink {
            socket,
            seq: 0,
            buffer: Vec::new(),
            repair: repair_for(protocol),
        })
    }

    /// The socket, e.g. to join multicast groups.
    pub(crate) fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Every message of a dump that `keep` turns into a value (each message is dropped once
    /// looked at: a dump of thousands of links is never held whole), the dump started again
    /// when a concurrent change interrupted it.
    pub(crate) fn dump<I, T>(
        &mut self,
        request: &I,
        mut keep: impl FnMut(I) -> Option<T>,
    ) -> io::Result<Vec<T>>
    where
        I: NetlinkSerializable + NetlinkDeserializable + Clone + Debug,
    {
        let flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut replies = self.exchange(request.clone(), flags, &mut keep)?;
        for _ in 1..DUMP_TRIES {
            if !replies.interrupted {
                break;
            }
            replies = self.exchange(request.clone(), flags, &mut keep)?;
        }
        Ok(replies.messages)
    }

    /// The one answer to a plain request.
    pub(crate) fn get<I>(&mut self, request: I) -> io::Result<Option<I>>
    where
        I: NetlinkSerializable + NetlinkDeserializable + Debug,
    {
        let replies = self.exchange(request, NLM_F_REQUEST, &mut Some)?;
        Ok(replies.messages.into_iter().next())
    }

    fn exchange<I, T>(
        &mut self,
        request: I,
        flags: u16,
        keep: &mut impl FnMut(I) -> Option<T>,
    ) -> io::Result<Replies<T>>
    where
        I: NetlinkSerializable + NetlinkDeserializable + Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        self.socket.send_to(&bytes, &SocketAddr::new(0, 0), 0)?;
        self.collect(flags & NLM_F_DUMP == NLM_F_DUMP, keep)
    }

    /// Reads datagrams until the dump is done, the one answer came, or the kernel said no;
    /// keeps what `keep` makes of each message.
    fn collect<I, T>(
        &mut self,
        dump: bool,
        keep: &mut impl FnMut(I) -> Option<T>,
    ) -> io::Result<Replies<T>>
    where
        I: NetlinkDeserializable + Debug,
    {
        let mut replies = Replies {
            messages: Vec::new(),
            interrupted: false,
        };
        loop {
            let repair = self.repair;
            for message in parse_datagram::<I>(self.receive()?, repair)? {
                if message.header.sequence_number != self.seq {
                    continue;
                }
                replies.interrupted |= message.header.flags & NLM_F_DUMP_INTR != 0;
                match message.payload {
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(err) => match err.code {
                        Some(code) => return Err(io::Error::from_raw_os_error(-code.get())),
                        None => return Ok(replies),
                    },
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.messages.extend(keep(inner));
                        if !dump {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

impl Netlink {
    /// The next datagram, whole: its length is peeked first, as iproute2 does.
    pub(crate) fn receive(&mut self) -> io::Result<&[u8]> {
        let mut probe: &mut [u8] = &mut [];
        let len = self
            .socket
            .recv(&mut probe, libc::MSG_PEEK | libc::MSG_TRUNC)?;
        self.buffer.clear();
        self.buffer.reserve(len.max(RECEIVE_FLOOR));
        let got = self.socket.recv(&mut self.buffer, 0)?;
        Ok(&self.buffer[..got.min(self.buffer.len())])
    }
}

impl Netlink {
    /// Reads and throws away the datagrams waiting on the socket, without blocking, until none
    /// is left or `limit` were read; how many there were (a loss the kernel reports,
    /// `ENOBUFS`, counts as one).
    pub(crate) fn discard_queued(&mut self, limit: usize) -> io::Result<usize> {
        let mut discarded = 0;
        for _ in 0..limit {
            let mut nothing: &mut [u8] = &mut [];
            match self
                .socket
                .recv(&mut nothing, libc::MSG_DONTWAIT | libc::MSG_TRUNC)
            {
                Ok(_) => discarded += 1,
                Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => discarded += 1,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(discarded)
    }

    /// Whether a datagram (or a loss, `ENOBUFS`) waits on the socket; never blocks.
    pub(crate) fn pending(&mut self) -> io::Result<bool> {
        let mut nothing: &mut [u8] = &mut [];
        let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        match self.socket.recv(&mut nothing, flags) {
            Ok(_) => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(err),
        }
    }
}

/// The messages of one datagram (a dump packs many into each); one the decoder refuses is
/// decoded again as `repair` rewrites it, when it does.
pub(crate) fn parse_datagram<I>(
    datagram: &[u8],
    repair: Repair,
) -> io::Result<Vec<NetlinkMessage<I>>>
where
    I: NetlinkDeserializable + Debug,
{
    let mut messages = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let bytes = &datagram[at..];
        let mut message = NetlinkMessage::<I>::deserialize(bytes).map_err(undecodable);
        if message.is_err() {
            if let Some(repaired) = repair(bytes) {
                let mut retried = NetlinkMessage::<I>::deserialize(&repaired).map_err(undecodable);
                if let Ok(again) = &mut retried {
                    // Where the next message starts: the length of the original.
                    again.header.length =
                        u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    message = retried;
                }
            }
        }
        let message = message?;
        let len = message.header.length as usize;
        if len == 0 {
            break;
        }
        at += len.next_multiple_of(4);
        messages.push(message);
    }
    Ok(messages)
}

/// A reply the decoder did not understand, as an I/O error that says so.
pub(crate) fn undecodable(err: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("undecodable netlink message: {err}"),
    )
}
