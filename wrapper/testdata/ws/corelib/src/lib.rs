//! A library of the kache test workspace: uses a dozen Debian-packaged crates.
use byteorder::{ByteOrder, LittleEndian};
use once_cell::sync::Lazy;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use smallvec::SmallVec;

mod greet;
pub use greet::greeting;

include!(concat!(env!("OUT_DIR"), "/generated.rs"));

bitflags::bitflags! {
    pub struct Flags: u32 { const A = 1; const B = 2; }
}

lazy_static::lazy_static! {
    static ref SEP: u8 = b' ';
}
static DIGITS: Lazy<&'static str> = Lazy::new(|| "0123456789");

#[derive(Debug)]
pub struct Empty;

impl std::fmt::Display for Empty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("empty input")
    }
}

impl std::error::Error for Empty {}

#[derive(Debug, PartialEq)]
pub struct Report {
    pub words: usize,
    pub numbers: usize,
    pub first_le: u32,
    pub flags: u32,
    pub table: usize,
    pub built: bool,
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Report", 6)?;
        st.serialize_field("words", &self.words)?;
        st.serialize_field("numbers", &self.numbers)?;
        st.serialize_field("first_le", &self.first_le)?;
        st.serialize_field("flags", &self.flags)?;
        st.serialize_field("table", &self.table)?;
        st.serialize_field("built", &self.built)?;
        st.end()
    }
}

cfg_if::cfg_if! {
    if #[cfg(feature = "extra")] {
        pub const FEATURE: &str = "extra";
    } else {
        pub const FEATURE: &str = "plain";
    }
}

pub fn report(text: &str) -> anyhow::Result<String> {
    if text.is_empty() {
        return Err(Empty.into());
    }
    log::debug!("reporting on {} bytes", text.len());
    let mut buf: SmallVec<[u8; 8]> = SmallVec::new();
    buf.extend_from_slice(text.as_bytes());
    while buf.len() < 4 {
        buf.push(0);
    }
    let r = Report {
        words: text.split(*SEP as char).filter(|w| w.chars().all(|c| c.is_alphabetic())).count(),
        numbers: text.split(*SEP as char).filter(|w| !w.is_empty() && w.chars().all(|c| DIGITS.contains(c))).count(),
        first_le: LittleEndian::read_u32(&buf[..4]),
        flags: (Flags::A | Flags::B).bits(),
        table: TABLE_LINES,
        built: cfg!(corelib_built),
    };
    let mut s = serde_json::to_string(&r)?;
    let mut b = itoa::Buffer::new();
    s.push_str(b.format(memchr::memchr(b' ', text.as_bytes()).unwrap_or(0)));
    let _pid = unsafe { libc::getpid() };
    Ok(s)
}
