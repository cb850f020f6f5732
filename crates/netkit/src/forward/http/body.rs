//! Message bodies as RFC 9112 §6-7 frame them, for both directions: a `Content-Length`, the
//! chunked coding (chunk-size lines, data, trailer section) or everything until the connection
//! closes. The reader only finds where a body ends; bytes pass on untouched, except that in
//! [`Emit::Normalized`] mode (requests) chunk-size lines lose their extensions and every line
//! end becomes CRLF, so the target can never read the framing differently from us.

use super::{fields, Error, MAX_HEAD};

/// The longest chunk-size line accepted (with its extensions).
const MAX_LINE: usize = 8 * 1024;

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// This many bytes (0: no body).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the sender closes (responses only).
    UntilClose,
}

/// What the reader re-emits of the chunked framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Emit {
    /// Canonical chunk-size lines and CRLF line ends; trailer fields re-emitted, checked.
    Normalized,
    /// The bytes as they came.
    Raw,
}

/// Where in a body the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Passing this many more bytes of a `Content-Length` body.
    Length(u64),
    /// Reading a chunk-size line.
    Size,
    /// Passing this many more bytes of chunk data.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading the trailer section after the last chunk.
    Trailer,
    /// Passing everything.
    UntilClose,
    /// The body has ended.
    Done,
}

/// Follows one body through the byte stream.
#[derive(Debug)]
pub(super) struct Body {
    state: State,
    emit: Emit,
    /// The framing line being collected.
    line: Vec<u8>,
    /// How much of an unfinished chunk-size line was checked, and where in it the check is.
    line_checked: (usize, SizePart),
    /// The trailer section so far.
    trailers: Vec<u8>,
}

impl Body {
    /// A reader for a body framed as `framing`.
    pub(super) fn new(framing: Framing, emit: Emit) -> Body {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size,
            Framing::UntilClose => State::UntilClose,
        };
        Body {
            state,
            emit,
            line: Vec::new(),
            line_checked: (0, SizePart::Digits),
            trailers: Vec::new(),
        }
    }

    /// Whether the body has ended.
    pub(super) fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the body runs until the sender closes.
    pub(super) fn until_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Consumes the part of `input` that belongs to the body (appending what to send on to
    /// `out`) and returns the rest, which begins after the body once [`Body::done`].
    pub(super) fn feed<'a>(
        &mut self,
        input: &'a [u8],
        out: &mut Vec<u8>,
    ) -> Result<&'a [u8], Error> {
        let mut input = input;
        while !input.is_empty() && !self.done() {
            input = match self.state {
                State::Length(left) | State::Data(left) => self.pass(input, left, out),
                State::UntilClose => {
                    out.extend_from_slice(input);
                    &[]
                }
                State::Size | State::DataEnd | State::Trailer => self.line(input, out)?,
                State::Done => input,
            };
        }
        Ok(input)
    }

    fn pass<'a>(&mut self, input: &'a [u8], left: u64, out: &mut Vec<u8>) -> &'a [u8] {
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
        out.extend_from_slice(&input[..take]);
        self.advance(take as u64);
        &input[take..]
    }

    /// The bytes that come next and pass untouched: the rest of a `Content-Length` body or of
    /// a chunk's data (0 elsewhere). A relay may move them without feeding them.
    pub(super) fn opaque_left(&self) -> u64 {
        match self.state {
            State::Length(left) | State::Data(left) => left,
            _ => 0,
        }
    }

    /// Counts `n` bytes (at most [`Body::opaque_left`]) as passed without being fed.
    pub(super) fn advance(&mut self, n: u64) {
        let (State::Length(left) | State::Data(left)) = self.state else {
            return;
        };
        let left = left - n.min(left);
        self.state = match (self.state, left) {
            (State::Data(_), 0) => State::DataEnd,
            (State::Data(_), left) => State::Data(left),
            (_, 0) => State::Done,
            (_, left) => State::Length(left),
        };
    }

    /// Collects one line of chunk framing and acts on it once complete.
    fn line<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], Error> {
        let (taken, complete) = match input.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (input.len(), false),
        };
        self.line.extend_from_slice(&input[..taken]);
        let limit = match self.state {
            State::Trailer => MAX_HEAD.saturating_sub(self.trailers.len()),
            _ => MAX_LINE,
        };
        if self.line.len() > limit {
            return Err(Error::Chunked(
                "chunk-size line or trailer section too long",
            ));
        }
        if complete {
            self.line_checked = (0, SizePart::Digits);
            self.complete_line(out)?;
        } else {
            self.check_unfinished_line()?;
        }
        Ok(&input[taken..])
    }

    /// Checks the bytes so far of a chunk-size line, or of the line end after chunk data,
    /// that has not ended yet (but a last CR): a line that can never be valid is refused at
    /// once, as HAProxy and nginx do, rather than when its end comes (a client waiting for an
    /// answer would wait for good). Each byte is looked at once.
    fn check_unfinished_line(&mut self) -> Result<(), Error> {
        let end = self.line.len() - usize::from(self.line.ends_with(b"\r"));
        match self.state {
            State::DataEnd if end > 0 => Err(Error::Chunked("chunk data longer than its size")),
            State::Size => {
                let (from, mut part) = self.line_checked;
                for (at, b) in self.line.iter().enumerate().take(end).skip(from) {
                    part = part
                        .next(*b, at == 0)
                        .ok_or(Error::Chunked("malformed chunk-size line"))?;
                }
                self.line_checked = (end.max(from), part);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn complete_line(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let line = std::mem::take(&mut self.line);
        let text = fields::strip_eol(&line)?;
        match self.state {
            State::Size => self.size_line(&line, text, out),
            State::DataEnd if text.is_empty() => {
                self.emit_line(&line, b"", out);
                self.state = State::Size;
                Ok(())
            }
            State::DataEnd => Err(Error::Chunked("chunk data longer than its size")),
            _ => {
                let last = text.is_empty();
                self.trailer_line(&line, last, out)
            }
        }
    }

    fn size_line(&mut self, line: &[u8], text: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let size = chunk_size(text)?;
        let canonical = format!("{size:x}");
        self.emit_line(line, canonical.as_bytes(), out);
        self.state = match size {
            0 => State::Trailer,
            n => State::Data(n),
        };
        Ok(())
    }

    /// Collects the trailer section line by line; the empty line ends it (and the body).
    fn trailer_line(&mut self, line: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), Error> {
        self.trailers.extend_from_slice(line);
        if !last {
            return Ok(());
        }
        self.state = State::Done;
        let section = std::mem::take(&mut self.trailers);
        match self.emit {
            Emit::Raw => out.extend_from_slice(&section),
            Emit::Normalized => fields::rewrite_trailers(&section, out)?,
        }
        Ok(())
    }

    fn emit_line(&self, raw: &[u8], canonical: &[u8], out: &mut Vec<u8>) {
        match self.emit {
            Emit::Raw => out.extend_from_slice(raw),
            Emit::Normalized => {
                out.extend_from_slice(canonical);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Where a chunk-size line still coming is: `1*HEXDIG [ *WS ";" chunk-ext ]`, the grammar
/// [`chunk_size`] checks once the line is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SizePart {
    /// In the hex digits of the size.
    Digits,
    /// In whitespace after them, before a `;`.
    Space,
    /// In the extensions (after the first `;`).
    Ext,
}

impl SizePart {
    /// Where the line is after byte `b` (`first`: the line's first byte), or `None` when no
    /// valid line begins so.
    fn next(self, b: u8, first: bool) -> Option<SizePart> {
        match (self, b) {
            (SizePart::Digits, b) if b.is_ascii_hexdigit() => Some(SizePart::Digits),
            _ if first => None,
            (SizePart::Digits | SizePart::Space, b' ' | b'\t') => Some(SizePart::Space),
            (SizePart::Digits | SizePart::Space, b';') => Some(SizePart::Ext),
            (SizePart::Ext, b) if !fields::is_ctl(b) => Some(SizePart::Ext),
            _ => None,
        }
    }
}

/// The most hex digits of a chunk size, leading zeros not counted (HAProxy and nginx take any
/// number of them; the line's length is bounded): 15, below 2^60, fit the signed 64 bits
/// many servers parse a chunk size into; 16 could wrap to a negative or small size there and
/// frame the body differently from us. Requests go on with the size in its shortest form.
const CHUNK_DIGITS: usize = 15;

/// The size of a chunk-size line (without its line end): `1*HEXDIG [ chunk-ext ]`. Extensions
/// may not hold control characters; whitespace is allowed only before them.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let zeros = line[..digits].iter().take_while(|b| **b == b'0').count();
    if digits == 0 || digits - zeros > CHUNK_DIGITS {
        return Err(Error::Chunked("chunk size is not hex, or is 2^60 or more"));
    }
    let rest = &line[digits..];
    let ext = fields::trim_ows(rest);
    let ext_ok = ext.is_empty() && rest.len() == ext.len()
        || ext.first() == Some(&b';') && !ext.iter().any(|b| fields::is_ctl(*b));
    if !ext_ok {
        return Err(Error::Chunked("malformed chunk-size line"));
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| Error::Chunked("chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| Error::Chunked("chunk size overflows"))
}
