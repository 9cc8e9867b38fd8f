//! Output helpers: the escape sequences that move the cursor, erase, colour text and switch
//! terminal modes, chosen for what the user's terminal (its `TERM`) can do.
//!
//! [`Capabilities`] is worked out from `TERM` (and `COLORTERM` when the client sent it) without a
//! terminfo database: every terminal people use over SSH today speaks the xterm dialect, and what
//! differs between them (how many colours, whether there is an alternate screen) is written in
//! the name. [`Emitter`] appends sequences to a caller's buffer and quietly leaves out what the
//! terminal cannot do; colours are downgraded (truecolor to 256 to 16 to none) to fit.

use super::width::sanitize;

/// The longest window title [`Emitter::title`] sends, in bytes.
pub const MAX_TITLE_LEN: usize = 256;

/// How many colours a terminal shows, from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ColorSupport {
    /// No colour (vt100, dumb).
    None,
    /// The 16 ANSI colours (8 normal, 8 bright).
    Ansi16,
    /// The xterm 256-colour palette.
    Ansi256,
    /// 24-bit colour.
    TrueColor,
}

/// What a terminal can do, as far as this module uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The colours it shows.
    pub colors: ColorSupport,
    /// Bold, underline, reverse video and the like.
    pub styles: bool,
    /// The alternate screen (`CSI ? 1049 h`).
    pub alternate_screen: bool,
    /// Bracketed paste mode (`CSI ? 2004 h`).
    pub bracketed_paste: bool,
    /// Focus reporting (`CSI ? 1004 h`).
    pub focus_events: bool,
    /// Setting the window title (`OSC 0`).
    pub title: bool,
}

impl Capabilities {
    /// What the terminal named `term` (the `TERM` from the pty request) can do, with `colorterm`
    /// the client's `COLORTERM` if it sent one (`truecolor` or `24bit` means 24-bit colour).
    pub fn from_term(term: &str, colorterm: Option<&str>) -> Self {
        let term = term.to_ascii_lowercase();
        let family = |prefixes: &[&str]| prefixes.iter().any(|p| term.starts_with(p));
        let modern = family(&[
            "xterm",
            "screen",
            "tmux",
            "rxvt",
            "alacritty",
            "kitty",
            "foot",
            "wezterm",
            "st-",
            "putty",
            "konsole",
            "gnome",
            "vte",
            "iterm",
            "contour",
            "ms-terminal",
            "ghostty",
        ]) || term == "st";
        let colorterm = colorterm.map(str::to_ascii_lowercase);
        let truecolor = matches!(colorterm.as_deref(), Some("truecolor" | "24bit"))
            || term.ends_with("-direct")
            || term.contains("truecolor")
            || family(&["alacritty", "xterm-kitty", "foot", "wezterm", "contour", "ghostty"]);
        let colors = if term.is_empty() || term == "dumb" || term.starts_with("vt") {
            ColorSupport::None
        } else if truecolor {
            ColorSupport::TrueColor
        } else if term.contains("256") {
            ColorSupport::Ansi256
        } else {
            ColorSupport::Ansi16
        };
        Self {
            colors,
            styles: !(term.is_empty() || term == "dumb"),
            alternate_screen: modern,
            bracketed_paste: modern,
            focus_events: modern,
            title: modern,
        }
    }

    /// A modern xterm-compatible terminal with 256 colours (what tests and examples assume).
    pub fn xterm_256color() -> Self {
        Self::from_term("xterm-256color", None)
    }
}

/// A colour, as the application asks for it; [`Emitter`] downgrades it to what the terminal has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Color {
    /// The terminal's default foreground or background.
    #[default]
    Default,
    /// One of the 16 ANSI colours, 0 to 15 (see the constants).
    Ansi(u8),
    /// An entry of the 256-colour palette.
    Indexed(u8),
    /// A 24-bit colour.
    Rgb(u8, u8, u8),
}

impl Color {
    /// ANSI black.
    pub const BLACK: Self = Self::Ansi(0);
    /// ANSI red.
    pub const RED: Self = Self::Ansi(1);
    /// ANSI green.
    pub const GREEN: Self = Self::Ansi(2);
    /// ANSI yellow.
    pub const YELLOW: Self = Self::Ansi(3);
    /// ANSI blue.
    pub const BLUE: Self = Self::Ansi(4);
    /// ANSI magenta.
    pub const MAGENTA: Self = Self::Ansi(5);
    /// ANSI cyan.
    pub const CYAN: Self = Self::Ansi(6);
    /// ANSI white (light grey on most terminals).
    pub const WHITE: Self = Self::Ansi(7);
    /// ANSI bright black (dark grey).
    pub const BRIGHT_BLACK: Self = Self::Ansi(8);
    /// ANSI bright red.
    pub const BRIGHT_RED: Self = Self::Ansi(9);
    /// ANSI bright green.
    pub const BRIGHT_GREEN: Self = Self::Ansi(10);
    /// ANSI bright yellow.
    pub const BRIGHT_YELLOW: Self = Self::Ansi(11);
    /// ANSI bright blue.
    pub const BRIGHT_BLUE: Self = Self::Ansi(12);
    /// ANSI bright magenta.
    pub const BRIGHT_MAGENTA: Self = Self::Ansi(13);
    /// ANSI bright cyan.
    pub const BRIGHT_CYAN: Self = Self::Ansi(14);
    /// ANSI bright white.
    pub const BRIGHT_WHITE: Self = Self::Ansi(15);

    /// The closest colour a terminal with `support` shows.
    pub fn downgrade(self, support: ColorSupport) -> Self {
        match (self, support) {
            (Self::Default, _) | (_, ColorSupport::TrueColor) => self,
            (_, ColorSupport::None) => Self::Default,
            (Self::Ansi(n), _) => Self::Ansi(n & 0x0f),
            (Self::Indexed(n), _) if n < 16 => Self::Ansi(n),
            (Self::Indexed(_), ColorSupport::Ansi256) => self,
            (Self::Rgb(r, g, b), ColorSupport::Ansi256) => {
                Self::Indexed(ansi_colours::ansi256_from_rgb((r, g, b)))
            }
            (Self::Indexed(n), ColorSupport::Ansi16) => {
                Self::Ansi(nearest_ansi16(ansi_colours::rgb_from_ansi256(n)))
            }
            (Self::Rgb(r, g, b), ColorSupport::Ansi16) => Self::Ansi(nearest_ansi16((r, g, b))),
        }
    }
}

/// The xterm default RGB values of the 16 ANSI colours.
const ANSI16_RGB: [(u8, u8, u8); 16] = [
    (0x00, 0x00, 0x00),
    (0xcd, 0x00, 0x00),
    (0x00, 0xcd, 0x00),
    (0xcd, 0xcd, 0x00),
    (0x00, 0x00, 0xee),
    (0xcd, 0x00, 0xcd),
    (0x00, 0xcd, 0xcd),
    (0xe5, 0xe5, 0xe5),
    (0x7f, 0x7f, 0x7f),
    (0xff, 0x00, 0x00),
    (0x00, 0xff, 0x00),
    (0xff, 0xff, 0x00),
    (0x5c, 0x5c, 0xff),
    (0xff, 0x00, 0xff),
    (0x00, 0xff, 0xff),
    (0xff, 0xff, 0xff),
];

/// The ANSI colour closest to `rgb` (squared distance in RGB).
fn nearest_ansi16(rgb: (u8, u8, u8)) -> u8 {
    let distance = |&(r, g, b): &(u8, u8, u8)| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        d(r, rgb.0) + d(g, rgb.1) + d(b, rgb.2)
    };
    let (index, _) =
        ANSI16_RGB.iter().enumerate().min_by_key(|(_, c)| distance(c)).unwrap_or((0, &(0, 0, 0)));
    u8::try_from(index).unwrap_or(0)
}

/// How text looks: colours and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Style {
    /// Foreground colour.
    pub fg: Color,
    /// Background colour.
    pub bg: Color,
    /// Bold.
    pub bold: bool,
    /// Dim (faint).
    pub dim: bool,
    /// Italic.
    pub italic: bool,
    /// Underline.
    pub underline: bool,
    /// Reverse video.
    pub reverse: bool,
}

impl Style {
    /// The terminal's default look.
    pub const DEFAULT: Self = Self {
        fg: Color::Default,
        bg: Color::Default,
        bold: false,
        dim: false,
        italic: false,
        underline: false,
        reverse: false,
    };

    /// The default look.
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// With foreground colour `color`.
    pub const fn fg(mut self, color: Color) -> Self {
        self.fg = color;
        self
    }

    /// With background colour `color`.
    pub const fn bg(mut self, color: Color) -> Self {
        self.bg = color;
        self
    }

    /// Bold.
    pub const fn bold(mut self) -> Self {
        self.bold = true;
        self
    }

    /// Dim.
    pub const fn dim(mut self) -> Self {
        self.dim = true;
        self
    }

    /// Italic.
    pub const fn italic(mut self) -> Self {
        self.italic = true;
        self
    }

    /// Underlined.
    pub const fn underline(mut self) -> Self {
        self.underline = true;
        self
    }

    /// Reverse video.
    pub const fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// This style as a terminal with `caps` shows it.
    pub fn downgrade(self, caps: &Capabilities) -> Self {
        if !caps.styles {
            return Self::DEFAULT;
        }
        Self { fg: self.fg.downgrade(caps.colors), bg: self.bg.downgrade(caps.colors), ..self }
    }
}

/// Appends escape sequences and text to a caller's buffer, for a terminal with the given
/// [`Capabilities`]. Sequences the terminal does not support are left out. Positions are
/// 0-based (row 0 is the top line).
#[derive(Debug)]
pub struct Emitter<'a> {
    caps: &'a Capabilities,
    out: &'a mut Vec<u8>,
}

impl<'a> Emitter<'a> {
    /// An emitter appending to `out`.
    pub fn new(caps: &'a Capabilities, out: &'a mut Vec<u8>) -> Self {
        Self { caps, out }
    }

    /// Text, made safe: control characters are replaced (see [`sanitize`]), and `\n` becomes
    /// `\r\n`, so a line starts at the left edge.
    pub fn text(&mut self, text: &str) {
        let clean = sanitize(text, true);
        for (i, line) in clean.split('\n').enumerate() {
            if i > 0 {
                self.out.extend_from_slice(b"\r\n");
            }
            self.out.extend_from_slice(line.as_bytes());
        }
    }

    /// Bytes as they are: the caller vouches for them.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Moves the cursor to `row`, `col` (0-based).
    pub fn move_to(&mut self, row: u16, col: u16) {
        match (row, col) {
            (0, 0) => self.csi(&[], b'H'),
            (row, 0) => self.csi(&[u32::from(row) + 1], b'H'),
            (row, col) => self.csi(&[u32::from(row) + 1, u32::from(col) + 1], b'H'),
        }
    }

    /// Moves the cursor up `n` rows (no further than the top).
    pub fn move_up(&mut self, n: u16) {
        self.relative(n, b'A');
    }

    /// Moves the cursor down `n` rows (no further than the bottom).
    pub fn move_down(&mut self, n: u16) {
        self.relative(n, b'B');
    }

    /// Moves the cursor right `n` columns.
    pub fn move_right(&mut self, n: u16) {
        self.relative(n, b'C');
    }

    /// Moves the cursor left `n` columns.
    pub fn move_left(&mut self, n: u16) {
        self.relative(n, b'D');
    }

    /// Moves the cursor to the left edge.
    pub fn carriage_return(&mut self) {
        self.out.push(b'\r');
    }

    /// Moves the cursor to the start of the next line, scrolling at the bottom.
    pub fn newline(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }

    /// Erases from the cursor to the end of its line.
    pub fn erase_to_line_end(&mut self) {
        self.csi(&[], b'K');
    }

    /// Erases the cursor's whole line.
    pub fn erase_line(&mut self) {
        self.csi(&[2], b'K');
    }

    /// Erases from the cursor to the end of the screen.
    pub fn erase_below(&mut self) {
        self.csi(&[], b'J');
    }

    /// Erases the whole screen and moves the cursor to the top left.
    pub fn erase_screen(&mut self) {
        self.csi(&[], b'H');
        self.csi(&[2], b'J');
    }

    /// Sets the look of the text that follows (downgraded for the terminal).
    pub fn style(&mut self, style: &Style) {
        if !self.caps.styles {
            return;
        }
        let style = style.downgrade(self.caps);
        self.out.extend_from_slice(b"\x1b[0");
        let flags = [
            (style.bold, b";1".as_slice()),
            (style.dim, b";2"),
            (style.italic, b";3"),
            (style.underline, b";4"),
            (style.reverse, b";7"),
        ];
        for (on, code) in flags {
            if on {
                self.out.extend_from_slice(code);
            }
        }
        self.color(style.fg, 30);
        self.color(style.bg, 40);
        self.out.push(b'm');
    }

    /// Back to the default look.
    pub fn reset_style(&mut self) {
        if self.caps.styles {
            self.out.extend_from_slice(b"\x1b[0m");
        }
    }

    /// Switches to the alternate screen (saving the normal one), or back.
    pub fn alternate_screen(&mut self, on: bool) {
        if self.caps.alternate_screen {
            self.private_mode(1049, on);
        }
    }

    /// Shows or hides the cursor.
    pub fn cursor_visible(&mut self, visible: bool) {
        self.private_mode(25, visible);
    }

    /// Turns bracketed paste on or off (pastes then arrive as [`super::Event::Paste`]).
    pub fn bracketed_paste(&mut self, on: bool) {
        if self.caps.bracketed_paste {
            self.private_mode(2004, on);
        }
    }

    /// Turns focus reporting on or off ([`super::Event::FocusGained`] and `FocusLost`).
    pub fn focus_events(&mut self, on: bool) {
        if self.caps.focus_events {
            self.private_mode(1004, on);
        }
    }

    /// Limits scrolling to rows `top` to `bottom` (0-based, inclusive); the cursor goes home.
    pub fn scroll_region(&mut self, top: u16, bottom: u16) {
        self.csi(&[u32::from(top) + 1, u32::from(bottom) + 1], b'r');
    }

    /// Scrolling covers the whole screen again.
    pub fn reset_scroll_region(&mut self) {
        self.csi(&[], b'r');
    }

    /// Sets the window title (controls removed, cut at [`MAX_TITLE_LEN`] bytes).
    pub fn title(&mut self, title: &str) {
        if !self.caps.title {
            return;
        }
        let clean = sanitize(title, false);
        let mut end = clean.len().min(MAX_TITLE_LEN);
        while !clean.is_char_boundary(end) {
            end -= 1;
        }
        self.out.extend_from_slice(b"\x1b]0;");
        self.out.extend_from_slice(clean.get(..end).unwrap_or_default().as_bytes());
        self.out.push(0x07);
    }

    /// Rings the bell.
    pub fn bell(&mut self) {
        self.out.push(0x07);
    }

    /// Puts the terminal back the way a shell expects it: default style, cursor shown, no
    /// scroll region, bracketed paste and focus reporting off, normal screen.
    pub fn restore(&mut self) {
        self.reset_style();
        self.reset_scroll_region();
        self.bracketed_paste(false);
        self.focus_events(false);
        self.cursor_visible(true);
        self.alternate_screen(false);
    }

    /// `n` times `CSI final`, as one sequence.
    fn relative(&mut self, n: u16, final_byte: u8) {
        match n {
            0 => {}
            1 => self.csi(&[], final_byte),
            n => self.csi(&[u32::from(n)], final_byte),
        }
    }

    /// `CSI ? mode h` or `CSI ? mode l`.
    fn private_mode(&mut self, mode: u32, on: bool) {
        self.out.extend_from_slice(b"\x1b[?");
        push_decimal(self.out, mode);
        self.out.push(if on { b'h' } else { b'l' });
    }

    /// The SGR parameters for `color`, with `base` 30 for foreground and 40 for background.
    fn color(&mut self, color: Color, base: u8) {
        match color {
            Color::Default => {}
            Color::Ansi(n) if n < 8 => {
                self.out.push(b';');
                push_decimal(self.out, u32::from(base + n));
            }
            Color::Ansi(n) => {
                self.out.push(b';');
                push_decimal(self.out, u32::from(base + 60 + (n & 7)));
            }
            Color::Indexed(n) => {
                self.out.push(b';');
                push_decimal(self.out, u32::from(base + 8));
                self.out.extend_from_slice(b";5;");
                push_decimal(self.out, u32::from(n));
            }
            Color::Rgb(r, g, b) => {
                self.out.push(b';');
                push_decimal(self.out, u32::from(base + 8));
                self.out.extend_from_slice(b";2");
                for part in [r, g, b] {
                    self.out.push(b';');
                    push_decimal(self.out, u32::from(part));
                }
            }
        }
    }

    /// `CSI p1 ; p2 ... final`.
    fn csi(&mut self, params: &[u32], final_byte: u8) {
        self.out.extend_from_slice(b"\x1b[");
        for (i, &param) in params.iter().enumerate() {
            if i > 0 {
                self.out.push(b';');
            }
            push_decimal(self.out, param);
        }
        self.out.push(final_byte);
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    loop {
        if let Some(slot) = digits.get_mut(len) {
            *slot = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        }
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits.iter().take(len).rev());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TERM` names decide the colour depth and the xterm extras.
    #[test]
    fn capabilities_follow_term_and_colorterm() {
        let caps = Capabilities::from_term("xterm-256color", None);
        assert_eq!(caps.colors, ColorSupport::Ansi256);
        assert!(caps.alternate_screen && caps.bracketed_paste && caps.title);
        assert_eq!(
            Capabilities::from_term("xterm-256color", Some("truecolor")).colors,
            ColorSupport::TrueColor
        );
        assert_eq!(Capabilities::from_term("screen", None).colors, ColorSupport::Ansi16);
        assert_eq!(Capabilities::from_term("linux", None).colors, ColorSupport::Ansi16);
        assert!(!Capabilities::from_term("linux", None).alternate_screen);
        let vt100 = Capabilities::from_term("vt100", None);
        assert_eq!(vt100.colors, ColorSupport::None);
        assert!(vt100.styles && !vt100.alternate_screen);
        assert!(!Capabilities::from_term("dumb", None).styles);
        assert_eq!(Capabilities::from_term("xterm-kitty", None).colors, ColorSupport::TrueColor);
    }

    /// Truecolor becomes the nearest palette entry, and 16 colours stay themselves.
    #[test]
    fn colors_downgrade_to_what_the_terminal_shows() {
        let orange = Color::Rgb(255, 135, 0);
        assert_eq!(orange.downgrade(ColorSupport::TrueColor), orange);
        assert_eq!(orange.downgrade(ColorSupport::Ansi256), Color::Indexed(208));
        assert_eq!(Color::Rgb(250, 10, 10).downgrade(ColorSupport::Ansi16), Color::BRIGHT_RED);
        assert_eq!(Color::Indexed(196).downgrade(ColorSupport::Ansi16), Color::BRIGHT_RED);
        assert_eq!(Color::Indexed(3).downgrade(ColorSupport::Ansi16), Color::YELLOW);
        assert_eq!(Color::RED.downgrade(ColorSupport::None), Color::Default);
    }

    /// SGR sequences carry attributes and colours in the terminal's dialect.
    #[test]
    fn style_emits_sgr_for_the_terminal() {
        let style = Style::new().fg(Color::Rgb(255, 135, 0)).bg(Color::BRIGHT_BLUE).bold();
        let mut out = Vec::new();
        Emitter::new(&Capabilities::from_term("xterm", Some("24bit")), &mut out).style(&style);
        assert_eq!(out, b"\x1b[0;1;38;2;255;135;0;104m");
        out.clear();
        Emitter::new(&Capabilities::xterm_256color(), &mut out).style(&style);
        assert_eq!(out, b"\x1b[0;1;38;5;208;104m");
        out.clear();
        Emitter::new(&Capabilities::from_term("vt100", None), &mut out).style(&style);
        assert_eq!(out, b"\x1b[0;1m");
        out.clear();
        Emitter::new(&Capabilities::from_term("dumb", None), &mut out).style(&style);
        assert!(out.is_empty());
    }

    /// Cursor motion and modes produce the standard sequences; unsupported modes are left out.
    #[test]
    fn emitter_writes_motion_and_modes() {
        let caps = Capabilities::xterm_256color();
        let mut out = Vec::new();
        let mut e = Emitter::new(&caps, &mut out);
        e.move_to(0, 0);
        e.move_to(4, 9);
        e.move_up(1);
        e.move_right(12);
        e.move_left(0);
        e.alternate_screen(true);
        e.cursor_visible(false);
        e.scroll_region(1, 22);
        e.title("chat\x1b]evil");
        assert_eq!(
            out,
            b"\x1b[H\x1b[5;10H\x1b[A\x1b[12C\x1b[?1049h\x1b[?25l\x1b[2;23r\x1b]0;chat\xef\xbf\xbd]evil\x07"
        );
        let caps = Capabilities::from_term("vt100", None);
        let mut out = Vec::new();
        let mut e = Emitter::new(&caps, &mut out);
        e.alternate_screen(true);
        e.bracketed_paste(true);
        e.title("x");
        assert!(out.is_empty());
    }

    /// Text from elsewhere cannot smuggle escape sequences, and newlines return to column 0.
    #[test]
    fn text_is_sanitized_and_newlines_return_to_the_left_edge() {
        let caps = Capabilities::xterm_256color();
        let mut out = Vec::new();
        Emitter::new(&caps, &mut out).text("a\x1b[2J\nb");
        assert_eq!(out, "a\u{fffd}[2J\r\nb".as_bytes());
    }

    /// Decimal formatting covers zero and the largest values.
    #[test]
    fn push_decimal_formats_numbers() {
        let mut out = Vec::new();
        for n in [0, 7, 10, 65_535, u32::MAX] {
            out.clear();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
