//! Fixed-capacity storage that is either borrowed from the caller or (with `alloc`) owned.
//!
//! This is how the core runs without an allocator: every table is a slice whose length is its
//! capacity, fixed when the balancer is built. With `alloc` the balancer allocates each slice
//! once at construction; without it the caller lends slices (e.g. from a `static`). Nothing
//! grows afterwards. (smoltcp's `ManagedSlice`, reduced to what we need.)

use core::ops::{Deref, DerefMut};

/// A slice the core may use for its whole life.
#[derive(Debug)]
pub enum Storage<'a, T> {
    /// Caller-provided memory.
    Borrowed(&'a mut [T]),
    /// Memory allocated once at construction.
    #[cfg(feature = "alloc")]
    Owned(alloc::boxed::Box<[T]>),
}

impl<'a, T> Storage<'a, T> {
    /// `len` values made by `make`, allocated once.
    #[cfg(feature = "alloc")]
    pub fn owned_with(len: usize, make: impl FnMut() -> T) -> Storage<'static, T> {
        let mut v = alloc::vec::Vec::with_capacity(len);
        v.resize_with(len, make);
        Storage::Owned(v.into_boxed_slice())
    }
}

impl<T> Deref for Storage<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Storage::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Storage::Owned(b) => b,
        }
    }
}

impl<T> DerefMut for Storage<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Storage::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Storage::Owned(b) => b,
        }
    }
}

impl<'a, T> From<&'a mut [T]> for Storage<'a, T> {
    fn from(s: &'a mut [T]) -> Self {
        Storage::Borrowed(s)
    }
}
