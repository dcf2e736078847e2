//! Small value parsers shared by both configuration syntaxes: numbers in a range, decimal
//! seconds without floating point, IP addresses and the diagnostic collector.
//!
//! Every function takes untrusted text and returns `None`/an error message rather than
//! panicking; arithmetic is checked.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use super::{Diagnostic, Origin, Severity};

/// Diagnostics with the position (in reading order, across includes) of the line they are
/// about, so that the final list can be sorted in file order.
#[derive(Default)]
pub(crate) struct Diags {
    list: Vec<(u64, Diagnostic)>,
    /// Reading position of each (file, line), for diagnostics found after reading.
    order: BTreeMap<(String, u32), u64>,
}

impl Diags {
    /// Remembers that `origin` was read at position `seq` (the first time wins).
    pub(crate) fn record(&mut self, origin: &Origin, seq: u64) {
        self.order
            .entry((origin.file.clone(), origin.line))
            .or_insert(seq);
    }
    /// An error about a line read earlier, sorted by where that line was read.
    pub(crate) fn error_at(&mut self, origin: &Origin, message: String) {
        let seq = self
            .order
            .get(&(origin.file.clone(), origin.line))
            .copied()
            .unwrap_or(u64::MAX);
        self.error(seq, origin, message);
    }
    pub(crate) fn error(&mut self, seq: u64, origin: &Origin, message: String) {
        self.push(seq, origin, Severity::Error, message);
    }
    pub(crate) fn warn(&mut self, seq: u64, origin: &Origin, message: String) {
        self.push(seq, origin, Severity::Warning, message);
    }
    fn push(&mut self, seq: u64, origin: &Origin, severity: Severity, message: String) {
        self.list.push((
            seq,
            Diagnostic {
                origin: origin.clone(),
                severity,
                message,
            },
        ));
    }
    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(|(_, d)| d.severity == Severity::Error)
    }
    /// Everything, in reading order (stable: same line keeps emission order).
    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|(seq, _)| *seq);
        self.list.into_iter().map(|(_, d)| d).collect()
    }
}

/// An unsigned decimal integer in `min..=max`.
pub(crate) fn parse_u64(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = s.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
}

/// A signed decimal integer in `min..=max` (leading `+` or `-` allowed).
pub(crate) fn parse_i64(s: &str, min: i64, max: i64) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = parse_u64(digits, 0, i64::MAX as u64)? as i64;
    let v = if neg { -mag } else { mag };
    (min..=max).contains(&v).then_some(v)
}

/// A non-negative decimal number of seconds with at most `decimals` fractional digits
/// (`1`, `0.5`, `2.25`), as an integer count of `10^-decimals` seconds. No floating point:
/// `0.1` is exactly one tenth.
pub(crate) fn parse_fixed(s: &str, decimals: u32) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > decimals as usize || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int_v = if int.is_empty() {
        0
    } else {
        parse_u64(int, 0, u64::MAX)?
    };
    let mut frac_v = if frac.is_empty() {
        0
    } else {
        parse_u64(frac, 0, u64::MAX)?
    };
    for _ in frac.len()..decimals as usize {
        frac_v = frac_v.checked_mul(10)?;
    }
    int_v
        .checked_mul(10u64.checked_pow(decimals)?)?
        .checked_add(frac_v)
}

/// Decimal seconds with microsecond resolution (keepalived's timers) in `min..=max`.
pub(crate) fn parse_secs(s: &str, min: Duration, max: Duration) -> Option<Duration> {
    let us = parse_fixed(s, 6)?;
    let d = Duration::from_micros(us);
    (min..=max).contains(&d).then_some(d)
}

/// An IPv4 or IPv6 address (no brackets, no prefix).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// `on|true|yes` / `off|false|no` as keepalived's `check_true_false`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// Seconds as written back in messages: `1`, `0.5`.
pub(crate) fn fmt_secs(d: Duration) -> String {
    let us = d.as_micros();
    if us.is_multiple_of(1_000_000) {
        format!("{}", us / 1_000_000)
    } else {
        let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
        String::from(s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_seconds() {
        assert_eq!(parse_fixed("1", 2), Some(100));
        assert_eq!(parse_fixed("0.5", 2), Some(50));
        assert_eq!(parse_fixed(".25", 2), Some(25));
        assert_eq!(parse_fixed("40.95", 2), Some(4095));
        assert_eq!(parse_fixed("1.234", 2), None);
        assert_eq!(parse_fixed("1.", 2), Some(100));
        assert_eq!(parse_fixed(".", 2), None);
        assert_eq!(parse_fixed("-1", 2), None);
        assert_eq!(parse_fixed("1e3", 2), None);
        assert_eq!(parse_fixed("99999999999999999999", 6), None);
        assert_eq!(
            parse_secs("0.001", Duration::ZERO, Duration::MAX),
            Some(Duration::from_millis(1))
        );
        assert_eq!(fmt_secs(Duration::from_millis(500)), "0.5");
        assert_eq!(fmt_secs(Duration::from_secs(3)), "3");
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64("255", 1, 255), Some(255));
        assert_eq!(parse_u64("256", 1, 255), None);
        assert_eq!(parse_u64("0", 1, 255), None);
        assert_eq!(parse_u64("+1", 0, 9), None);
        assert_eq!(parse_u64("", 0, 9), None);
        assert_eq!(parse_i64("-253", -253, 253), Some(-253));
        assert_eq!(parse_i64("-254", -253, 253), None);
        assert_eq!(parse_i64("-", -253, 253), None);
        assert_eq!(parse_i64("+7", -253, 253), Some(7));
    }
}
