//! What can cross a slot: [`ShmData`] types, and the results methods may return.
//!
//! A `ShmData` type writes itself into bytes and reads itself back from bytes that are validated
//! as they are read: primitives through zerocopy (`try_read_from_bytes`: a `bool` byte of 2 or a
//! `char` above `0x10FFFF` is refused), arrays of primitives in one zerocopy conversion, derived
//! structs field by field at their offsets, derived enums by checking the value against the
//! declared discriminants. Values are built with safe code from validated parts, so no `unsafe`
//! is needed anywhere to turn bytes into values, and the user's types never implement zerocopy's
//! traits (which would make them part of their public API).

use zerocopy::{IntoBytes, TryFromBytes};

use crate::interface::Shape;
use crate::wire::{ReadNumbers, Reader, Writer};

/// A value of fixed size and layout that can be copied through shared memory: the same bytes
/// mean the same value in every process, 32- or 64-bit.
///
/// Implemented for `u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64 bool char`, for arrays
/// `[T; N]` of `ShmData` types, and by `#[derive(ShmData)]` for a `#[repr(C)]` or
/// `#[repr(transparent)]` struct of `ShmData` fields without padding, and for a field-less enum
/// with `#[repr(u8|u16|u32|u64)]`. Not for `usize`/`isize`, whose size differs between 32- and
/// 64-bit processes, nor for anything holding a pointer (`&T`, `String`, `Vec`, `Box`): those
/// cross calls as arguments and results of their own (see [`Wire`](crate::Wire)), not as fields
/// of a `ShmData` type.
///
/// ```
/// use shmrpc::ShmData;
///
/// #[derive(Clone, Copy, Debug, PartialEq, ShmData)]
/// #[repr(C)]
/// pub struct Point { pub x: f64, pub y: f64, pub id: u32, pub _pad: u32 }
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
/// #[repr(u8)]
/// pub enum Color { Red = 1, Green = 2 }
/// ```
///
/// Implement it only through the derive: the hidden items are shmrpc's, and change between
/// versions.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be carried in a shared-memory slot",
    label = "not `ShmData`",
    note = "shmrpc carries fixed-size plain data: u8..u128, i8..i128 (not usize/isize), f32, f64, \
            bool, char, arrays [T; N] of those, and #[repr(C)] structs or #[repr(u8..u64)] enums \
            with #[derive(shmrpc::ShmData)]",
    note = "text and lists cross as arguments and results of their own (&str, String, &[T], \
            Vec<T>), not as fields of a ShmData type"
)]
pub trait ShmData: Sized + 'static {
    /// Bytes a value takes in a slot.
    #[doc(hidden)]
    const SIZE: usize;
    /// What the type looks like, for the interface fingerprint.
    #[doc(hidden)]
    const SHAPE: &'static Shape;
    /// Writes the value into `out`, which is exactly `SIZE` bytes.
    #[doc(hidden)]
    fn encode(&self, out: &mut [u8]);
    /// Reads and validates a value from exactly `SIZE` bytes.
    #[doc(hidden)]
    fn decode(bytes: &[u8]) -> Result<Self, Invalid>;

    /// Writes the value's `SIZE` bytes: through a small buffer on the stack, or one on the heap
    /// for a big value, unless the type writes itself piece by piece (the derive does).
    #[doc(hidden)]
    #[inline]
    fn encode_to(&self, w: &mut Writer<'_>) {
        if Self::SIZE <= 256 {
            let mut buf = [0u8; 256];
            self.encode(&mut buf[..Self::SIZE]);
            w.put(&buf[..Self::SIZE]);
        } else {
            let mut buf = vec![0u8; Self::SIZE];
            self.encode(&mut buf);
            w.put(&buf);
        }
    }

    /// `encode_to` for an array of these; element by element unless overridden.
    #[doc(hidden)]
    #[inline]
    fn encode_array_to(items: &[Self], w: &mut Writer<'_>) {
        for item in items {
            item.encode_to(w);
        }
    }

    /// Reads `n` values from `n * SIZE` bytes into a vector (a big array is built there, not on
    /// the stack); element by element unless overridden.
    #[doc(hidden)]
    #[inline]
    fn decode_slice(bytes: &[u8], n: usize) -> Result<Vec<Self>, Invalid> {
        decode_each(bytes, n)
    }

    /// Reads `n` values (an array's) from the message: its bytes as one slice, checked one by
    /// one, unless the type reads faster.
    #[doc(hidden)]
    #[inline]
    fn read_slice(r: &mut Reader<'_>, n: usize) -> Result<Vec<Self>, Invalid> {
        r.with_bytes(n * Self::SIZE, |bytes| Self::decode_slice(bytes, n))
    }

    /// Reads `out.len()` values (an array's) into `out`, in place: element by element, unless
    /// the type reads faster.
    #[doc(hidden)]
    #[inline]
    fn read_into(r: &mut Reader<'_>, out: &mut [Self]) -> Result<(), Invalid> {
        let size = Self::SIZE;
        r.with_bytes(out.len() * size, |bytes| {
            for (i, value) in out.iter_mut().enumerate() {
                *value = Self::decode(&bytes[i * size..][..size])?;
            }
            Ok(())
        })
    }

    /// `encode` for an array of these; element by element unless overridden.
    #[doc(hidden)]
    #[inline]
    fn encode_array<const N: usize>(items: &[Self; N], out: &mut [u8]) {
        for (item, out) in items.iter().zip(out.chunks_exact_mut(Self::SIZE.max(1))) {
            item.encode(out);
        }
    }

    /// `decode` for an array of these; element by element unless overridden.
    #[doc(hidden)]
    #[inline]
    fn decode_array<const N: usize>(bytes: &[u8]) -> Result<[Self; N], Invalid> {
        if bytes.len() != N * Self::SIZE {
            return Err(Invalid("wrong length"));
        }
        let size = Self::SIZE;
        let items: [Option<Self>; N] =
            core::array::from_fn(|i| Self::decode(&bytes[i * size..][..size]).ok());
        if items.iter().any(Option::is_none) {
            return Err(Invalid("a value out of range for its type"));
        }
        Ok(items.map(|item| item.expect("every item was checked above")))
    }
}

/// `n` values from `n * T::SIZE` bytes, one by one.
fn decode_each<T: ShmData>(bytes: &[u8], n: usize) -> Result<Vec<T>, Invalid> {
    if bytes.len() != n * T::SIZE {
        return Err(Invalid("wrong length"));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(T::decode(&bytes[i * T::SIZE..][..T::SIZE])?);
    }
    Ok(out)
}

fn validated<T: TryFromBytes>(
    read: Result<T, zerocopy::TryReadError<&[u8], T>>,
) -> Result<T, Invalid> {
    match read {
        Ok(value) => Ok(value),
        Err(zerocopy::TryReadError::Size(_)) => Err(Invalid("wrong length")),
        Err(_) => Err(Invalid("a value out of range for its type")),
    }
}

macro_rules! primitive {
    ($kind:ident: $($t:ty),*) => {$(
        impl ShmData for $t {
            read_slice!($kind $t);
            const SIZE: usize = core::mem::size_of::<$t>();
            const SHAPE: &'static Shape = &Shape::Primitive {
                name: stringify!($t),
                size: core::mem::size_of::<$t>(),
            };
            #[inline]
            fn encode(&self, out: &mut [u8]) {
                out.copy_from_slice(self.as_bytes());
            }
            #[inline]
            fn decode(bytes: &[u8]) -> Result<Self, Invalid> {
                validated(<$t>::try_read_from_bytes(bytes))
            }
            #[inline]
            fn encode_to(&self, w: &mut Writer<'_>) {
                w.put(self.as_bytes());
            }
            #[inline]
            fn encode_array_to(items: &[Self], w: &mut Writer<'_>) {
                w.put(items.as_bytes());
            }
            #[inline]
            fn decode_slice(bytes: &[u8], n: usize) -> Result<Vec<Self>, Invalid> {
                match <[$t]>::try_ref_from_bytes(bytes) {
                    Ok(items) if items.len() == n => Ok(items.to_vec()),
                    _ => decode_each(bytes, n),
                }
            }
            #[inline]
            fn encode_array<const N: usize>(items: &[Self; N], out: &mut [u8]) {
                crate::view::copy_private(out, items.as_bytes());
            }
            #[inline]
            fn decode_array<const N: usize>(bytes: &[u8]) -> Result<[Self; N], Invalid> {
                validated(<[$t; N]>::try_read_from_bytes(bytes))
            }
        }
    )*};
}

macro_rules! read_slice {
    (numbers $t:ty) => {
        #[inline]
        fn read_slice(r: &mut Reader<'_>, n: usize) -> Result<Vec<Self>, Invalid> {
            <$t as ReadNumbers>::read_numbers(r, n)
        }
        #[inline]
        fn read_into(r: &mut Reader<'_>, out: &mut [Self]) -> Result<(), Invalid> {
            <$t as ReadNumbers>::read_numbers_into(r, out)
        }
    };
    (checked $t:ty) => {};
}

primitive!(numbers: u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);
primitive!(checked: bool, char);

impl<T: ShmData, const N: usize> ShmData for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const SHAPE: &'static Shape = &Shape::Array {
        element: T::SHAPE,
        len: N,
    };
    #[inline]
    fn encode(&self, out: &mut [u8]) {
        T::encode_array(self, out);
    }
    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self, Invalid> {
        T::decode_array(bytes)
    }
    #[inline]
    fn encode_to(&self, w: &mut Writer<'_>) {
        T::encode_array_to(self, w);
    }
}

/// Why bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

/// The larger of two sizes, in `const` (also used by generated code).
pub const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// How the derive encodes and decodes one field. Built by [`field`], the one place where the
/// type must be `ShmData`, so a wrong type is reported once, on its own span.
#[doc(hidden)]
#[derive(Debug)]
pub struct Codec<T> {
    pub size: usize,
    pub shape: &'static Shape,
    pub encode: fn(&T, &mut [u8]),
    pub decode: fn(&[u8]) -> Result<T, Invalid>,
    pub encode_to: fn(&T, &mut Writer<'_>),
}

#[doc(hidden)]
pub const fn field<T: ShmData>() -> Codec<T> {
    Codec {
        size: T::SIZE,
        shape: T::SHAPE,
        encode: T::encode,
        decode: T::decode,
        encode_to: T::encode_to,
    }
}

/// Fails compilation, at the derive's field, when there is padding before that field.
#[doc(hidden)]
#[track_caller]
pub const fn no_padding_before(gap: usize) {
    match gap {
        0 => {}
        1 => panic!(
            "1 byte of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 1]` just before it (or order the fields largest first)"
        ),
        2 => panic!(
            "2 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 2]` just before it (or order the fields largest first)"
        ),
        3 => panic!(
            "3 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 3]` just before it (or order the fields largest first)"
        ),
        4 => panic!(
            "4 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 4]` just before it (or order the fields largest first)"
        ),
        5 => panic!(
            "5 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 5]` just before it (or order the fields largest first)"
        ),
        6 => panic!(
            "6 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 6]` just before it (or order the fields largest first)"
        ),
        7 => panic!(
            "7 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 7]` just before it (or order the fields largest first)"
        ),
        8 => panic!(
            "8 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 8]` just before it (or order the fields largest first)"
        ),
        9 => panic!(
            "9 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 9]` just before it (or order the fields largest first)"
        ),
        10 => panic!(
            "10 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 10]` just before it (or order the fields largest first)"
        ),
        11 => panic!(
            "11 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 11]` just before it (or order the fields largest first)"
        ),
        12 => panic!(
            "12 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 12]` just before it (or order the fields largest first)"
        ),
        13 => panic!(
            "13 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 13]` just before it (or order the fields largest first)"
        ),
        14 => panic!(
            "14 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 14]` just before it (or order the fields largest first)"
        ),
        15 => panic!(
            "15 bytes of padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; 15]` just before it (or order the fields largest first)"
        ),
        _ => panic!(
            "padding before this field: padding bytes are undefined and cannot be shared between processes; add a field `_pad: [u8; N]` just before it"
        ),
    }
}

/// Fails compilation, at the derive's last field, when there is padding at the end.
#[doc(hidden)]
#[track_caller]
pub const fn no_padding_after(gap: usize) {
    match gap {
        0 => {}
        1 => panic!(
            "1 byte of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 1]` (or order the fields largest first)"
        ),
        2 => panic!(
            "2 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 2]` (or order the fields largest first)"
        ),
        3 => panic!(
            "3 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 3]` (or order the fields largest first)"
        ),
        4 => panic!(
            "4 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 4]` (or order the fields largest first)"
        ),
        5 => panic!(
            "5 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 5]` (or order the fields largest first)"
        ),
        6 => panic!(
            "6 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 6]` (or order the fields largest first)"
        ),
        7 => panic!(
            "7 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 7]` (or order the fields largest first)"
        ),
        8 => panic!(
            "8 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 8]` (or order the fields largest first)"
        ),
        9 => panic!(
            "9 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 9]` (or order the fields largest first)"
        ),
        10 => panic!(
            "10 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 10]` (or order the fields largest first)"
        ),
        11 => panic!(
            "11 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 11]` (or order the fields largest first)"
        ),
        12 => panic!(
            "12 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 12]` (or order the fields largest first)"
        ),
        13 => panic!(
            "13 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 13]` (or order the fields largest first)"
        ),
        14 => panic!(
            "14 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 14]` (or order the fields largest first)"
        ),
        15 => panic!(
            "15 bytes of padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; 15]` (or order the fields largest first)"
        ),
        _ => panic!(
            "padding after this last field: padding bytes are undefined and cannot be shared between processes; add a last field `_pad: [u8; N]`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: ShmData + PartialEq + std::fmt::Debug>(v: T) {
        let mut buf = vec![0xEE; T::SIZE];
        v.encode(&mut buf);
        let mut piecewise = Vec::new();
        v.encode_to(&mut Writer::buf(&mut piecewise));
        assert_eq!(piecewise, buf);
        assert_eq!(T::decode(&buf), Ok(v));
    }

    #[test]
    fn primitives_and_arrays_round_trip() {
        round_trip(-5i64);
        round_trip(u128::MAX);
        round_trip('é');
        round_trip(true);
        round_trip([1.5f64, -0.0, f64::INFINITY]);
        round_trip([[1u8, 2], [3, 4]]);
        round_trip([true; 300]);
    }

    #[test]
    fn invalid_bytes_are_refused_not_trusted() {
        assert_eq!(
            bool::decode(&[2]),
            Err(Invalid("a value out of range for its type"))
        );
        assert!(char::decode(&0x11_0000u32.to_le_bytes()).is_err());
        assert!(char::decode(&0xD800u32.to_le_bytes()).is_err());
        assert!(u32::decode(&[0, 0]).is_err());
        assert!(bool::decode_slice(&[1, 0, 2], 3).is_err());
        assert_eq!(u16::decode_slice(&[1, 0, 2, 0], 2), Ok(vec![1, 2]));
    }

    #[test]
    fn sizes_are_the_same_on_32_and_64_bit() {
        assert_eq!(<[u128; 2] as ShmData>::SIZE, 32);
        assert_eq!(<[[u16; 3]; 2] as ShmData>::SIZE, 12);
    }
}
