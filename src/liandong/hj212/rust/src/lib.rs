//! The hot path of the HJ 212 decoder for clean frames.
//!
//! `decode_clean` accepts only a frame that the Python decoder (`liandong.hj212.decoding.decode`)
//! would decode without a single warning in either mode, along its fast ("planned") data-area
//! path. For anything else it returns `None` and the caller runs the Python decoder, which owns
//! every error, warning and quirk. So the native code never has to agree with Python on a
//! deviation: it only has to recognise a clean frame and split it the same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

/// FNV-1a: the cached keys are a few bytes long, where SipHash's set-up dominates.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf29ce484222325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }
}

const MAX_KEYS: usize = 4096;

thread_local! {
    /// Data-area keys (``DataTime``, factor codes, ``Avg``, ...) repeat in every frame: one
    /// Python string each, with its hash already computed, serves as every dict key.
    static KEY_CACHE: RefCell<HashMap<Box<str>, Py<PyString>, BuildHasherDefault<Fnv>>> =
        RefCell::new(HashMap::default());
}

fn key<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyString> {
    KEY_CACHE.with(|cell| {
        let mut keys = cell.borrow_mut();
        if let Some(found) = keys.get(text) {
            return found.bind(py).clone();
        }
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        let made = PyString::intern(py, text);
        keys.insert(text.into(), made.clone().unbind());
        made
    })
}

const fn arc_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xA001 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static ARC: [u16; 256] = arc_table();

/// `L**k` for k = 0..7 where `L(x) = ARC[x] >> 8` (linear over GF(2), `L**8` = identity).
const fn l_powers() -> [[u8; 256]; 8] {
    let mut out = [[0u8; 256]; 8];
    let mut x = 0;
    while x < 256 {
        out[0][x] = x as u8;
        x += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut x = 0;
        while x < 256 {
            out[k][x] = (ARC[out[k - 1][x] as usize] >> 8) as u8;
            x += 1;
        }
        k += 1;
    }
    out
}

static LPOW: [[u8; 256]; 8] = l_powers();

/// HJ 212-2017 Appendix A: before each byte the register drops its low byte, so only the high
/// byte carries state, `h' = L(h ^ b)`. By linearity the bytes need only XOR-folding by
/// position mod 8 (eight bytes per step), then eight lookups (see liandong/hj212/crc.py).
fn hj212_crc16(data: &[u8]) -> u16 {
    let n = data.len();
    if n == 0 {
        return 0xFFFF;
    }
    let mut fold: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        fold ^= u64::from_le_bytes(chunk.try_into().unwrap());
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    fold ^= u64::from_le_bytes(tail);
    let last = n - 1;
    let mut x = LPOW[last % 8][0xFF];
    for p in 0..8 {
        let lane = (fold >> (8 * p)) as u8;
        x ^= LPOW[(last + 8 - p) % 8][lane as usize];
    }
    ARC[x as usize]
}

#[cfg(test)]
fn hj212_crc16_bytewise(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc = ARC[((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn folded_crc_equals_bytewise() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 37 % 251) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(super::hj212_crc16(&data[..n]), super::hj212_crc16_bytewise(&data[..n]));
        }
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// An unpadded decimal of at most `max_digits` digits (Python notes zero padding).
fn plain_int(s: &str, max_digits: usize) -> Option<u32> {
    if !is_digits(s) || s.len() > max_digits || (s.len() > 1 && s.as_bytes()[0] == b'0') {
        return None;
    }
    s.parse().ok()
}

/// `[-+]?(\d+\.?\d*|\.\d+)` over ASCII digits.
fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i == b.len() {
        return int_digits > 0;
    }
    if b[i] != b'.' {
        return false;
    }
    i += 1;
    let frac_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i == b.len() && (int_digits > 0 || i > frac_start)
}

fn is_numeric_suffix(s: &str) -> bool {
    matches!(
        s,
        "Rtd" | "Min" | "Avg" | "Max" | "Cou" | "ZsRtd" | "ZsMin" | "ZsAvg" | "ZsMax" | "ZsCou"
            | "Data" | "DayData" | "NightData"
    )
}

struct Header<'a> {
    qn: &'a str,
    st: &'a str,
    cn: &'a str,
    pw: &'a str,
    mn: &'a str,
    flag: u32,
    pnum: Option<u32>,
    pno: Option<u32>,
}

const KEYS: [&str; 8] = ["QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"];

/// The header in exactly Table 3 order with every value well formed, or None.
fn clean_header(head: &str) -> Option<Header<'_>> {
    if head.contains(',') {
        return None;
    }
    let mut values: [&str; 8] = [""; 8];
    let mut count = 0;
    for item in head.split(';') {
        if count == 8 {
            return None;
        }
        let (key, value) = item.split_once('=')?;
        if key != KEYS[count] {
            return None;
        }
        values[count] = value;
        count += 1;
    }
    if count != 6 && count != 8 {
        return None;
    }
    let [qn, st, cn, pw, mn, flag, pnum, pno] = values;
    if qn.len() != 17 || !is_digits(qn) {
        return None;
    }
    if st.len() != 2 || !st.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return None;
    }
    if cn.len() != 4 || !is_digits(cn) || mn.is_empty() || pw.chars().count() > 6 {
        return None;
    }
    let flag = plain_int(flag, 3)?;
    if flag > 255 {
        return None;
    }
    match flag >> 2 {
        1 | 2 => {
            if mn.len() != 24 || !mn.bytes().all(|b| UPPER_HEX.contains(&b)) {
                return None;
            }
        }
        0 => {
            if mn.len() != 14 || !mn.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
        }
        _ => {}
    }
    let (pnum, pno) = if count == 8 {
        let pnum = plain_int(pnum, 4)?;
        let pno = plain_int(pno, 4)?;
        if flag & 2 == 0 || pno < 1 || pno > pnum {
            return None;
        }
        (Some(pnum), Some(pno))
    } else {
        if flag & 2 != 0 {
            return None;
        }
        (None, None)
    };
    Some(Header { qn, st, cn, pw, mn, flag, pnum, pno })
}

/// (key, value) items of a data area laid out as fields first, then each factor's keys together.
struct Layout<'a> {
    fields: Vec<(&'a str, &'a str)>,
    factors: Vec<(&'a str, Vec<(&'a str, &'a str)>)>,
}

fn clean_cp(cp: &str) -> Option<Layout<'_>> {
    let mut layout = Layout { fields: Vec::new(), factors: Vec::new() };
    if cp.is_empty() {
        return Some(layout);
    }
    if cp.contains("//") {
        return None;
    }
    for item in cp.split([';', ',']) {
        let (key, value) = item.split_once('=')?;
        if value.contains('=') {
            return None;
        }
        match key.split_once('-') {
            Some((code, suffix)) => {
                if code.is_empty()
                    || suffix.is_empty()
                    || !code.bytes().all(|b| b.is_ascii_alphanumeric())
                    || !suffix.bytes().all(|b| b.is_ascii_alphabetic())
                {
                    return None;
                }
                if is_numeric_suffix(suffix) && !is_number(value) {
                    return None;
                }
                let same = matches!(layout.factors.last(), Some((last, _)) if *last == code);
                if same {
                    let group = &mut layout.factors.last_mut()?.1;
                    if group.iter().any(|(s, _)| *s == suffix) {
                        return None;
                    }
                    group.push((suffix, value));
                } else {
                    if layout.factors.iter().any(|(c, _)| *c == code) {
                        return None; // a factor's keys not contiguous
                    }
                    layout.factors.push((code, vec![(suffix, value)]));
                }
            }
            None => {
                if key.is_empty()
                    || !key.bytes().all(|b| b.is_ascii_alphabetic())
                    || !layout.factors.is_empty()
                    || layout.fields.iter().any(|(k, _)| *k == key)
                {
                    return None;
                }
                layout.fields.push((key, value));
            }
        }
    }
    Some(layout)
}

/// Decode a clean frame into plain Python objects, or None when the Python decoder must decide.
///
/// Returns `(qn, st, cn, pw, mn, flag, pnum, pno, cp, fields, factors)` where `fields` is a dict
/// and `factors` a list of `(original code, {suffix: value})` in the order sent.
#[pyfunction]
fn decode_clean<'py>(
    py: Python<'py>,
    frame: &[u8],
    max_segment: usize,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let n = frame.len();
    if n < 12 || &frame[..2] != b"##" || &frame[n - 2..] != b"\r\n" {
        return Ok(None);
    }
    let length = &frame[2..6];
    if !length.iter().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let end = n - 2;
    let segment = &frame[6..end - 4];
    let declared: usize = length.iter().fold(0, |acc, b| acc * 10 + (b - b'0') as usize);
    if declared != segment.len() || segment.len() > max_segment {
        return Ok(None);
    }
    let crc = hj212_crc16(segment);
    let given = &frame[end - 4..end];
    for (k, &g) in given.iter().enumerate() {
        if g != UPPER_HEX[((crc >> (12 - 4 * k)) & 0xF) as usize] {
            return Ok(None);
        }
    }
    let Ok(text) = std::str::from_utf8(segment) else {
        return Ok(None);
    };
    if text.contains([' ', '\t']) {
        return Ok(None); // whitespace is trimmed with a warning by the Python decoder
    }
    let Some(cp_at) = text.find("CP=&&") else {
        return Ok(None);
    };
    if text.len() < cp_at + 7 || !text.ends_with("&&") || cp_at == 0 {
        return Ok(None);
    }
    let cp = &text[cp_at + 5..text.len() - 2];
    let Some(head) = text[..cp_at].strip_suffix(';') else {
        return Ok(None);
    };
    let Some(h) = clean_header(head) else {
        return Ok(None);
    };
    let Some(layout) = clean_cp(cp) else {
        return Ok(None);
    };
    let fields = PyDict::new(py);
    for (k, value) in &layout.fields {
        fields.set_item(key(py, k), *value)?;
    }
    let factors = PyList::empty(py);
    for (code, items) in &layout.factors {
        let values = PyDict::new(py);
        for (suffix, value) in items {
            values.set_item(key(py, suffix), *value)?;
        }
        factors.append((key(py, code), values))?;
    }
    let out = (
        h.qn,
        h.st,
        h.cn,
        h.pw,
        h.mn,
        h.flag,
        h.pnum,
        h.pno,
        cp,
        fields,
        factors,
    )
        .into_pyobject(py)?;
    Ok(Some(out))
}

/// HJ 212 Appendix A CRC (exposed for the parity tests).
#[pyfunction]
fn crc16(data: &[u8]) -> u16 {
    hj212_crc16(data)
}

#[pymodule]
fn hj212_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_clean, m)?)?;
    m.add_function(wrap_pyfunction!(crc16, m)?)?;
    Ok(())
}
