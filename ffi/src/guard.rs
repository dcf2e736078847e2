//! The panic boundary and the pointer checks every exported function goes through.
//!
//! - [`guard`] runs a function body under `catch_unwind`: a panic becomes
//!   `LBCORE_RESULT_PANIC`, never an unwind into C.
//! - [`Opaque`] gives every object handed to C a `poisoned` flag; [`HandlePtr::with`] refuses
//!   a poisoned handle and poisons one whose call panicked, so that a half-updated object is
//!   never used again.
//! - `in_ref`, `out_ptr`, `in_slice`, `out_slice` turn raw pointers into references after
//!   checking for NULL and alignment.

use core::ffi::c_char;
use core::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::lbcore_result;

/// The result type of function bodies: `Err` carries the code to return.
pub(crate) type Res<T = ()> = Result<T, lbcore_result>;

/// Runs `f`, turning its `Err` into the code and a panic into `LBCORE_RESULT_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> Res) -> lbcore_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => lbcore_result::Ok,
        Ok(Err(e)) => e,
        Err(_) => lbcore_result::Panic,
    }
}

/// Runs `f`, which returns nothing (the `_free` functions), swallowing a panic: there is
/// nothing to report it to.
pub(crate) fn guard_void(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// An object handed to C as an opaque pointer: the Rust value plus a `poisoned` flag. Each
/// opaque C type is a plain struct (so that cbindgen declares it) implementing this trait
/// through [`impl_opaque!`].
pub(crate) trait Opaque: Sized {
    /// The Rust value inside.
    type Inner;
    /// A fresh, unpoisoned handle.
    fn wrap(inner: Self::Inner) -> Self;
    /// The value and the poison flag.
    fn parts(&mut self) -> (&mut Self::Inner, &mut bool);
}

/// Declares `$t` (a struct with fields `inner: $inner` and `poisoned: bool`) an [`Opaque`].
macro_rules! impl_opaque {
    ($t:ty, $inner:ty) => {
        impl $crate::guard::Opaque for $t {
            type Inner = $inner;
            fn wrap(inner: $inner) -> Self {
                Self {
                    inner,
                    poisoned: false,
                }
            }
            fn parts(&mut self) -> (&mut $inner, &mut bool) {
                (&mut self.inner, &mut self.poisoned)
            }
        }
    };
}
pub(crate) use impl_opaque;

/// A new heap handle, ownership passed to the caller (who frees it with [`free`]).
pub(crate) fn into_raw<O: Opaque>(inner: O::Inner) -> *mut O {
    Box::into_raw(Box::new(O::wrap(inner)))
}

/// Frees a handle made by [`into_raw`]; NULL is ignored.
///
/// # Safety
/// `p` is NULL or came from [`into_raw`] and was not freed.
pub(crate) unsafe fn free<O: Opaque>(p: *mut O) {
    if !p.is_null() {
        // SAFETY: by the contract, `p` is a live pointer from `Box::into_raw`.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A handle pointer received from C, with the caller's promise attached: creating one is
/// the `unsafe` step; using it ([`HandlePtr::with`]) is safe and runs inside the panic
/// boundary: NULL gives `NullParameter`, a poisoned handle `Poisoned`, and a panic poisons it.
pub(crate) struct HandlePtr<O>(*mut O);

impl<O: Opaque> HandlePtr<O> {
    /// # Safety
    /// `p` is NULL or a live pointer from [`into_raw`], used by no one else while this value
    /// exists.
    pub(crate) unsafe fn new(p: *mut O) -> Self {
        HandlePtr(p)
    }

    /// [`HandlePtr::new`] for a `const` pointer, for read-only calls.
    ///
    /// # Safety
    /// As [`HandlePtr::new`]. Handles are created mutable ([`into_raw`]) and owned by C; the
    /// only write a read-only call can make is the poison flag.
    pub(crate) unsafe fn new_const(p: *const O) -> Self {
        HandlePtr(p.cast_mut())
    }

    /// Runs `f` on the value.
    pub(crate) fn with<R>(self, f: impl FnOnce(&mut O::Inner) -> Res<R>) -> Res<R> {
        if self.0.is_null() {
            return Err(lbcore_result::NullParameter);
        }
        if !self.0.is_aligned() {
            return Err(lbcore_result::InvalidParameter);
        }
        // SAFETY: non-null and aligned; live and unaliased by the promise made in `new`.
        let (inner, poisoned) = unsafe { &mut *self.0 }.parts();
        if *poisoned {
            return Err(lbcore_result::Poisoned);
        }
        match catch_unwind(AssertUnwindSafe(move || f(inner))) {
            Ok(r) => r,
            Err(_) => {
                *poisoned = true;
                Err(lbcore_result::Panic)
            }
        }
    }

    /// Runs `f` on the value, read-only.
    pub(crate) fn with_ref<R>(self, f: impl FnOnce(&O::Inner) -> Res<R>) -> Res<R> {
        self.with(|t| f(t))
    }
}

/// A shared reference to an input value.
///
/// # Safety
/// `p` is NULL or valid for reads of a `T` for the duration of the call.
pub(crate) unsafe fn in_ref<'a, T>(p: *const T) -> Res<&'a T> {
    if p.is_null() {
        return Err(lbcore_result::NullParameter);
    }
    if !p.is_aligned() {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: non-null, aligned, and valid for reads by the contract.
    Ok(unsafe { &*p })
}

/// An out-parameter, as possibly uninitialised memory.
///
/// # Safety
/// `p` is NULL or valid for writes of a `T` for the duration of the call.
pub(crate) unsafe fn out_ptr<'a, T>(p: *mut T) -> Res<&'a mut MaybeUninit<T>> {
    if p.is_null() {
        return Err(lbcore_result::NullParameter);
    }
    if !p.is_aligned() {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: non-null, aligned, valid for writes by the contract; `MaybeUninit` makes no
    // claim about the current contents.
    Ok(unsafe { &mut *p.cast::<MaybeUninit<T>>() })
}

/// An in-out parameter: an initialised value the call reads and may update.
///
/// # Safety
/// `p` is NULL or valid for reads and writes of a `T`, not aliased, for the duration of the
/// call.
pub(crate) unsafe fn inout_ref<'a, T>(p: *mut T) -> Res<&'a mut T> {
    if p.is_null() {
        return Err(lbcore_result::NullParameter);
    }
    if !p.is_aligned() {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: non-null, aligned, valid and unaliased by the contract.
    Ok(unsafe { &mut *p })
}

/// An in-out buffer of initialised values; NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or valid for reads and writes of `len` elements, not aliased, for the
/// duration of the call.
pub(crate) unsafe fn inout_slice<'a, T>(p: *mut T, len: usize) -> Res<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(lbcore_result::NullParameter);
    }
    if !p.is_aligned() {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: non-null, aligned, `len` valid elements by the contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// An input buffer; NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` elements for the duration of the call.
pub(crate) unsafe fn in_slice<'a, T>(p: *const T, len: usize) -> Res<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(lbcore_result::NullParameter);
    }
    if !p.is_aligned() {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: non-null, aligned, `len` readable elements by the contract.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// An output buffer; NULL is allowed only with length 0.
///
/// # Safety
/// `p` is NULL or valid for writes of `len` elements, not aliased, for the duration of the
/// call.
pub(crate) unsafe fn out_slice<'a, T>(p: *mut T, len: usize) -> Res<&'a mut [MaybeUninit<T>]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(lbcore_result::NullParameter);
    }
    if !p.is_aligned() {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: non-null, aligned, `len` writable elements by the contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(p.cast::<MaybeUninit<T>>(), len) })
}

/// Writes `items` into a caller array of capacity `cap`, or reports the count needed.
///
/// `BufferTooSmall` writes `items.len()` into `out_n`; `Ok` writes the items and their count.
pub(crate) fn write_items<T: Copy>(
    items: &[T],
    out: &mut [MaybeUninit<T>],
    out_n: &mut MaybeUninit<usize>,
) -> Res {
    if out.len() < items.len() {
        out_n.write(items.len());
        return Err(lbcore_result::BufferTooSmall);
    }
    for (o, i) in out.iter_mut().zip(items) {
        o.write(*i);
    }
    out_n.write(items.len());
    Ok(())
}

/// Writes `text` NUL-terminated into `buf[..len]` and its length into `out_n`; or, when it
/// does not fit, the size needed (with the NUL) into `out_n` and `BufferTooSmall`.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes.
pub(crate) unsafe fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_n: &mut MaybeUninit<usize>,
) -> Res {
    if buf.is_null() && len != 0 {
        return Err(lbcore_result::NullParameter);
    }
    let need = text.len() + 1;
    if len < need {
        out_n.write(need);
        return Err(lbcore_result::BufferTooSmall);
    }
    // SAFETY: `buf` is non-null (len >= need >= 1) and valid for `len` bytes by the contract.
    let out = unsafe { out_slice(buf.cast::<u8>(), len)? };
    for (o, b) in out.iter_mut().zip(text.as_bytes().iter().chain(Some(&0u8))) {
        o.write(*b);
    }
    out_n.write(text.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_a_code() {
        assert_eq!(guard(|| Ok(())), lbcore_result::Ok);
        assert_eq!(guard(|| Err(lbcore_result::BadWeight)), lbcore_result::BadWeight);
        assert_eq!(guard(|| panic!("boom")), lbcore_result::Panic);
        guard_void(|| panic!("boom in free"));
    }

    struct Cell {
        inner: u32,
        poisoned: bool,
    }
    impl_opaque!(Cell, u32);

    #[test]
    fn a_panic_poisons_the_handle() {
        let h = into_raw::<Cell>(5);
        // SAFETY: `h` is live; used by this thread only.
        unsafe {
            assert_eq!(HandlePtr::new(h).with(|v| Ok(*v + 1)), Ok(6));
            let r: Res<()> = HandlePtr::new(h).with(|v| {
                *v = 7;
                panic!("half-way")
            });
            assert_eq!(r, Err(lbcore_result::Panic));
            assert_eq!(HandlePtr::new(h).with(|v| Ok(*v)), Err(lbcore_result::Poisoned));
            assert_eq!(
                HandlePtr::new_const(h).with_ref(|v| Ok(*v)),
                Err(lbcore_result::Poisoned)
            );
            free(h);
            free::<Cell>(core::ptr::null_mut());
        }
    }

    #[test]
    fn pointer_checks() {
        // SAFETY: every pointer below is NULL, misaligned (refused before use), or valid.
        unsafe {
            assert_eq!(
                HandlePtr::<Cell>::new(core::ptr::null_mut()).with(|_| Ok(())),
                Err(lbcore_result::NullParameter)
            );
            assert_eq!(
                in_ref::<u64>(core::ptr::null()).err(),
                Some(lbcore_result::NullParameter)
            );
            let words = [0u64; 2];
            let misaligned = words.as_ptr().cast::<u8>().wrapping_add(1).cast::<u64>();
            assert_eq!(in_ref(misaligned).err(), Some(lbcore_result::InvalidParameter));
            assert_eq!(
                out_ptr(misaligned.cast_mut()).err(),
                Some(lbcore_result::InvalidParameter)
            );
            assert_eq!(in_slice::<u8>(core::ptr::null(), 0).map(|s| s.len()), Ok(0));
            assert_eq!(
                in_slice::<u8>(core::ptr::null(), 1).err(),
                Some(lbcore_result::NullParameter)
            );
            assert_eq!(
                out_slice::<u8>(core::ptr::null_mut(), 1).err(),
                Some(lbcore_result::NullParameter)
            );
        }
    }

    #[test]
    fn text_and_items_report_the_size_needed() {
        let mut n = MaybeUninit::new(0usize);
        let mut buf = [1 as c_char; 4];
        // SAFETY: `buf` has 4 writable bytes.
        unsafe {
            assert_eq!(
                write_text("abcd", buf.as_mut_ptr(), 4, &mut n),
                Err(lbcore_result::BufferTooSmall)
            );
            assert_eq!(n.assume_init(), 5);
            assert_eq!(buf, [1; 4], "nothing written on failure");
            assert_eq!(write_text("abc", buf.as_mut_ptr(), 4, &mut n), Ok(()));
            assert_eq!(n.assume_init(), 3);
            assert_eq!(buf, [b'a' as c_char, b'b' as c_char, b'c' as c_char, 0]);
        }
        let mut out = [MaybeUninit::<u16>::uninit(); 1];
        assert_eq!(
            write_items(&[1u16, 2], &mut out, &mut n),
            Err(lbcore_result::BufferTooSmall)
        );
        // SAFETY: written by write_items.
        assert_eq!(unsafe { n.assume_init() }, 2);
        assert_eq!(write_items(&[9u16], &mut out, &mut n), Ok(()));
        // SAFETY: written by write_items.
        assert_eq!(unsafe { out[0].assume_init() }, 9);
    }
}
