//! Text from the network made safe for a terminal: control characters (C0, DEL, C1), bytes
//! that are not UTF-8, bidirectional overrides and other invisible format characters are shown
//! as escapes, so nothing a peer sends (a service banner, an interface alias) can move the
//! cursor, change colours or reorder the text on screen.

/// Makes network text safe to print on one line: trailing line ends are dropped, `\n`, `\r`,
/// `\t` and `\\` are escaped, other control characters and bytes that are not UTF-8 become
/// `\xNN`, invisible format characters `\u{N}`.
pub fn sanitize(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n' | b'\0'))
        .map_or(0, |i| i + 1);
    let mut out = String::with_capacity(end);
    for chunk in bytes[..end].utf8_chunks() {
        chunk.valid().chars().for_each(|c| push_char(&mut out, c));
        chunk.invalid().iter().for_each(|b| push_byte(&mut out, *b));
    }
    out
}

/// `bytes` as text, losing nothing: valid UTF-8 as it is, every other byte as `\xNN` (names
/// the kernel takes as bytes: interfaces, aliases, address labels).
pub fn escape_non_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        chunk.invalid().iter().for_each(|b| push_byte(&mut out, *b));
    }
    out
}

/// An input as an error message names it: whole up to [`CLIPPED_INPUT`] characters, else its
/// beginning and its length, so a megabyte line of a target file or a config does not flood
/// the terminal with its error.
pub fn clipped(input: &str) -> std::borrow::Cow<'_, str> {
    match input.char_indices().nth(CLIPPED_INPUT) {
        None => input.into(),
        Some((end, _)) => format!("{}... ({} bytes)", &input[..end], input.len()).into(),
    }
}

/// The longest input an error message shows whole, in characters.
pub const CLIPPED_INPUT: usize = 256;

/// A byte as `\xNN`.
fn push_byte(out: &mut String, byte: u8) {
    out.push_str(&format!("\\x{byte:02x}"));
}

/// A message for one terminal line: control characters and invisible format characters
/// escaped as [`sanitize`] does them, a backslash (and everything else) left as it is — an
/// input with a newline or an escape sequence cannot split an error line or restyle it.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push(c),
            c => push_char(&mut out, c),
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        c if (c as u32) < 0x100 && c.is_control() => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if is_invisible(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Format characters that reorder or hide text: bidi controls, zero-width characters, BOM.
fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x2069 | 0xfeff | 0xfff9..=0xfffb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_keeps_short_inputs_and_cuts_long_ones_at_a_character() {
        let short = "é".repeat(CLIPPED_INPUT);
        assert_eq!(clipped(&short), short);
        let long = "é".repeat(CLIPPED_INPUT + 1);
        let expected = format!("{}... ({} bytes)", "é".repeat(CLIPPED_INPUT), long.len());
        assert_eq!(clipped(&long), expected);
    }

    #[test]
    fn one_line_escapes_controls_and_keeps_backslashes() {
        assert_eq!(one_line("lo\n: no such"), "lo\\n: no such");
        assert_eq!(one_line("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(one_line("bad\\xff ok"), "bad\\xff ok");
    }

    #[test]
    fn plain_banners_pass_through() {
        assert_eq!(sanitize(b"SSH-2.0-OpenSSH_9.6\r\n"), "SSH-2.0-OpenSSH_9.6");
        assert_eq!(sanitize("220 ça va".as_bytes()), "220 ça va");
    }

    #[test]
    fn terminal_controls_are_escaped() {
        let hostile = b"220 \x1b[2J\x1b]0;owned\x07ok\r\nnext\x7f\x00\x9b";
        let clean = sanitize(hostile);
        assert_eq!(
            clean,
            "220 \\x1b[2J\\x1b]0;owned\\x07ok\\r\\nnext\\x7f\\x00\\x9b"
        );
        assert!(!clean.chars().any(char::is_control), "{clean:?}");
    }

    #[test]
    fn c1_and_bidi_controls_are_escaped() {
        let text = "a\u{9b}b\u{202e}c\u{200b}";
        assert_eq!(sanitize(text.as_bytes()), "a\\x9bb\\u{202e}c\\u{200b}");
    }
}
