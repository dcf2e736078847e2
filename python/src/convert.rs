//! Conversions between Python values and core values that several classes share: times,
//! durations, MAC addresses, packet bytes, and the guard that keeps a locked object from being
//! re-entered on its own thread.

use core::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use lbcore::time::{Duration, Instant};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::{MutexExt, PyOnceLock};
use pyo3::types::{PyByteArray, PyBytes};

use crate::errors::{BusyError, LbError};

/// `time.monotonic_ns()`: the clock used when a call is given no `now`.
pub fn monotonic_ns(py: Python<'_>) -> PyResult<u64> {
    static MONOTONIC_NS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let f = MONOTONIC_NS.get_or_try_init(py, || -> PyResult<_> {
        Ok(py.import("time")?.getattr("monotonic_ns")?.unbind())
    })?;
    f.bind(py).call0()?.extract()
}

/// The instant for an optional `now` argument (nanoseconds): the given value, or the monotonic
/// clock.
pub fn now_or_clock(py: Python<'_>, now: Option<u64>) -> PyResult<Instant> {
    Ok(Instant::from_nanos(match now {
        Some(ns) => ns,
        None => monotonic_ns(py)?,
    }))
}

/// A duration given in seconds (int or float), as ipvsadm and keepalived write them.
pub fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!("{what} must be a finite, non-negative number of seconds"))
    })
}

/// A MAC address: `"aa:bb:cc:dd:ee:ff"` (or with `-`), or 6 bytes.
pub fn mac(obj: &Bound<'_, PyAny>) -> PyResult<[u8; 6]> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return <[u8; 6]>::try_from(b.as_bytes())
            .map_err(|_| PyValueError::new_err("a MAC address as bytes must be 6 bytes long"));
    }
    let s: String = obj
        .extract()
        .map_err(|_| PyTypeError::new_err("a MAC address is a str like 'aa:bb:cc:dd:ee:ff' or 6 bytes"))?;
    parse_mac(&s).ok_or_else(|| PyValueError::new_err(format!("invalid MAC address {s:?}")))
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `"aa:bb:cc:dd:ee:ff"`.
pub fn mac_str(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// An optional MAC argument.
pub fn opt_mac(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<[u8; 6]>> {
    match obj {
        Some(o) if !o.is_none() => mac(o).map(Some),
        _ => Ok(None),
    }
}

/// An IP address: a `str` or an `ipaddress` object.
pub fn ip(obj: &Bound<'_, PyAny>) -> PyResult<IpAddr> {
    obj.extract::<IpAddr>()
        .map_err(|_| PyValueError::new_err(format!("invalid IP address {}", describe(obj))))
}

fn describe(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".to_owned())
}

/// Calls `f` with the bytes of a packet: `bytes` without a copy, `bytearray` copied.
pub fn with_packet<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(f(&b.to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "a packet must be bytes or bytearray (e.g. bytes(scapy_packet)), not {}",
        obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// A mutex for state that is used with the GIL released.
///
/// The rule that makes it deadlock-free: never wait for the mutex while attached to the
/// interpreter. [`Locked::lock`] tries first (the common, uncontended case costs nothing more);
/// if another thread holds it, it waits detached, so that the holder can re-attach to finish.
/// A thread that already holds it (a finalizer or callback re-entering the object from inside
/// a call) gets `BusyError` instead of deadlocking on itself.
pub struct Locked<T> {
    inner: Mutex<T>,
    owner: AtomicUsize,
}

thread_local! {
    static THREAD_TOKEN: u8 = const { 0 };
}

/// A non-zero number unique to the calling thread while it lives.
fn thread_token() -> usize {
    THREAD_TOKEN.with(|t| core::ptr::from_ref(t) as usize)
}

pub struct Guard<'a, T> {
    guard: MutexGuard<'a, T>,
    owner: &'a AtomicUsize,
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.owner.store(0, Ordering::Release);
    }
}

impl<T> core::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> core::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T: Send> Locked<T> {
    pub fn new(value: T) -> Self {
        Locked {
            inner: Mutex::new(value),
            owner: AtomicUsize::new(0),
        }
    }

    pub fn lock<'a>(&'a self, py: Python<'_>) -> PyResult<Guard<'a, T>> {
        let me = thread_token();
        if self.owner.load(Ordering::Acquire) == me {
            return Err(BusyError::new_err(
                "re-entrant call: this object is in the middle of a call on this thread",
            ));
        }
        // Waits detached from the interpreter when another thread holds the lock.
        let guard = self.inner.lock_py_attached(py).map_err(|_| poisoned())?;
        self.owner.store(me, Ordering::Release);
        Ok(Guard {
            guard,
            owner: &self.owner,
        })
    }
}

fn poisoned() -> PyErr {
    LbError::new_err("this object is unusable: an earlier call panicked inside it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_print() {
        assert_eq!(parse_mac("02:00:00:00:00:0a"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("2-0-0-0-0-A"), Some([2, 0, 0, 0, 0, 10]));
        assert_eq!(parse_mac("02:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("02:00:00:00:00:100"), None);
        assert_eq!(parse_mac("02::00:00:00:00"), None);
        assert_eq!(mac_str([2, 0, 0, 0, 0, 10]), "02:00:00:00:00:0a");
    }
}
