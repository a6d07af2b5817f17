//! The bytes of a call: how every type that can cross ([`Wire`]) is written and read.
//!
//! A message is its values back to back, in the order of the method's arguments (a request)
//! or the one result (a response). Little-endian on every platform: shmrpc builds only for
//! little-endian targets, where a value's wire bytes are its memory bytes.
//!
//! | type | bytes |
//! |---|---|
//! | a [`ShmData`] value | its `SIZE` bytes, unaligned: the zero-parse path of fixed types |
//! | `&str`, `String` | u32 length in bytes, then UTF-8 |
//! | `&[T]`, `Vec<T>` | u32 count, then (for numbers) zero padding up to a multiple of 16 bytes (64 for 256 bytes of numbers or more) counted from [`ORIGIN`] bytes before the message, then the elements |
//! | `Option<T>` | u8 0 (`None`) or 1 then `T` |
//! | `Result<T, E>` | u8 0 then `T`, or 1 then `E` |
//! | `Box<T>`, `Arc<T>` | as `T` |
//! | `()` | nothing |
//!
//! Padding is counted from [`ORIGIN`] bytes before the start of the message, so both sides agree
//! on it whatever the addresses. Messages start that far into a cache line, in the slot (after
//! the request's or response's fields, which a small message shares its line with) and in
//! private copies, so a sequence of numbers is aligned wherever it is: the server lends `&[u64]`
//! out of its copy, and large copies (a `&[u8]` of a megabyte) start on a cache line in shared
//! memory, which bulk copies need to reach full speed. Reading checks every length against the bytes that are left before it
//! allocates anything (a count of `n` elements needs at least `n` times the element's smallest
//! encoding), so no allocation is ever larger than the message; text must be UTF-8; a message
//! must end exactly where its last value does. Whatever is wrong is an [`Invalid`] naming it.

use std::sync::Arc;

use zerocopy::{FromBytes, IntoBytes};

use crate::data::{Invalid, ShmData};
use crate::interface::Shape;
use crate::view::View;

#[cfg(target_endian = "big")]
compile_error!(
    "shmrpc supports little-endian targets only: its wire format is a value's memory bytes"
);

/// Writes a message: into a slot (through copies, never a reference into shared memory) or
/// into a private buffer. Past its limit it only counts, so that a message too large for the
/// slot is known by its full size, and nothing is sent.
#[derive(Debug)]
pub struct Writer<'a> {
    target: Target<'a>,
    pos: usize,
    limit: usize,
    /// A length that does not fit the wire's u32.
    unencodable: bool,
    /// For a server's response: the fork epoch of the process that took the request (a forked
    /// child must not write).
    epoch: Option<u64>,
    /// For a server's response: where a large one goes instead (see [`Writer::place`]).
    large_base: Option<usize>,
}

#[derive(Debug)]
enum Target<'a> {
    Slot {
        view: &'a View,
        base: usize,
    },
    Buf(&'a mut Vec<u8>),
    /// Writes nothing: counts how long a message would be.
    Count,
}

impl<'a> Writer<'a> {
    /// Writes into `view` from `base`, at most `limit` bytes.
    pub(crate) fn slot(view: &'a View, base: usize, limit: usize) -> Self {
        Writer {
            target: Target::Slot { view, base },
            pos: 0,
            limit,
            unencodable: false,
            epoch: None,
            large_base: None,
        }
    }

    /// As [`Writer::slot`], for the response to a request this process took: at `base`, or, if
    /// it is longer than [`LARGE_REPLY`], at `large_base` (over the request).
    pub(crate) fn response(view: &'a View, base: usize, large_base: usize, limit: usize) -> Self {
        Writer {
            epoch: Some(crate::sys::fork_epoch()),
            large_base: Some(large_base),
            ..Writer::slot(view, base, limit)
        }
    }

    /// Counts how long a message would be, writing nothing.
    pub fn counting() -> Writer<'static> {
        Writer {
            target: Target::Count,
            pos: 0,
            limit: usize::MAX,
            unencodable: false,
            epoch: None,
            large_base: None,
        }
    }

    /// Before anything is written into a response: places a response of `len` bytes where the
    /// client will look for it, over the request if it is longer than [`LARGE_REPLY`].
    #[inline]
    pub fn place(&mut self, len: usize) {
        if let (Some(large), Target::Slot { base, .. }, 0) =
            (self.large_base, &mut self.target, self.pos)
            && len > LARGE_REPLY
        {
            *base = large;
        }
    }

    /// Whether this writer would rather know the message's length first (a response).
    #[inline]
    pub fn wants_length(&self) -> bool {
        self.large_base.is_some() && self.pos == 0
    }

    /// A child a method forked (without exec) must not write a result into the slot, where its
    /// parent answers: it exits at once.
    #[cold]
    fn forked() -> ! {
        crate::sys::exit_forked_child(&[
            "shmrpc: a method forked this process, and the child went on to send a result; only \
             the process that bound a service serves it, so the child exits now (end a forked \
             child with exec or _exit instead)",
        ]);
    }

    /// Appends to `buf` (cleared first).
    pub fn buf(buf: &'a mut Vec<u8>) -> Self {
        buf.clear();
        Writer {
            target: Target::Buf(buf),
            pos: 0,
            limit: usize::MAX,
            unencodable: false,
            epoch: None,
            large_base: None,
        }
    }

    /// As [`Writer::buf`], writing at most `limit` bytes (past it, only counting).
    pub(crate) fn buf_limited(buf: &'a mut Vec<u8>, limit: usize) -> Self {
        Writer {
            limit,
            ..Writer::buf(buf)
        }
    }

    /// Appends `bytes`.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) {
        if self
            .epoch
            .is_some_and(|epoch| epoch != crate::sys::fork_epoch())
        {
            Self::forked();
        }
        let end = self.pos.saturating_add(bytes.len());
        if end <= self.limit {
            match &mut self.target {
                Target::Slot { view, base } => view.write_at(*base + self.pos, bytes),
                Target::Buf(buf) => buf.extend_from_slice(bytes),
                Target::Count => {}
            }
        }
        self.pos = end;
    }

    /// Appends a length or count.
    #[inline]
    pub fn put_len(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or_else(|_| {
            self.unencodable = true;
            u32::MAX
        });
        self.put(&n.to_le_bytes());
    }

    /// Pads with zeros up to a multiple of `align` (a power of two, at most 64), counted from
    /// [`ORIGIN`] bytes before the message.
    #[inline]
    pub fn align(&mut self, align: usize) {
        debug_assert!(align <= 64);
        let pad = padding(self.pos, align);
        if pad != 0 {
            self.put(&[0; 64][..pad]);
        }
    }

    /// Bytes written (or, past the limit, that would have been).
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Whether the message does not fit: longer than the limit, or a length over `u32::MAX`.
    pub fn too_large(&self) -> bool {
        self.pos > self.limit || self.unencodable
    }

    /// What was written.
    pub fn finish(self) -> Written {
        Written {
            len: self.pos,
            too_large: self.too_large(),
        }
    }
}

/// What a [`Writer`] wrote: `len` bytes, or, if `too_large`, that many that did not fit.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub len: usize,
    pub too_large: bool,
}

/// Where a method writes its result itself, straight into the caller's slot: take it as the
/// method's last argument, `reply: shmrpc::Reply<'_, T>`, and return what its `send` returns,
/// [`Replied`]. Callers see a method returning `T`.
///
/// For results a server has at hand rather than builds: a slice of a buffer it keeps (a camera
/// frame), or of an argument (an echo). `send_slice` copies it once, into the slot, where
/// returning `Vec<T>` would build a vector first (an allocation and a copy) and then copy it.
///
/// ```
/// use shmrpc::{Replied, Reply};
///
/// #[shmrpc::shm_service]
/// pub trait Camera {
///     fn latest(&self, reply: Reply<'_, Vec<u8>>) -> Replied;
/// }
///
/// struct Sensor { frame: std::sync::Mutex<Vec<u8>> }
///
/// impl Camera for Sensor {
///     fn latest(&self, reply: Reply<'_, Vec<u8>>) -> Replied {
///         reply.send_slice(&self.frame.lock().unwrap())
///     }
/// }
/// // A client calls `CameraClient::latest(&self) -> Result<Vec<u8>, Error>`, or
/// // `latest_into(&self, &mut Vec<u8>)` to reuse its own buffer.
/// ```
#[derive(Debug)]
pub struct Reply<'a, T> {
    w: &'a mut Writer<'a>,
    result: std::marker::PhantomData<fn(T)>,
}

/// Proof that a method sent its result through its [`Reply`]: only `Reply`'s methods make one.
#[derive(Debug)]
#[must_use = "a method that takes a Reply returns what its `send` returned"]
pub struct Replied {
    written: Written,
}

impl Replied {
    fn sent(w: &Writer<'_>) -> Self {
        Replied {
            written: Written {
                len: w.pos,
                too_large: w.too_large(),
            },
        }
    }

    #[doc(hidden)]
    pub fn written(&self) -> Written {
        self.written
    }
}

impl<'a, T: Wire> Reply<'a, T> {
    #[doc(hidden)]
    pub fn new(w: &'a mut Writer<'a>) -> Self {
        Reply {
            w,
            result: std::marker::PhantomData,
        }
    }

    /// Sends `value` as the result, written straight into the slot.
    pub fn send(self, value: &T) -> Replied {
        send(value, T::encode, self.w);
        Replied::sent(self.w)
    }
}

impl<T: Wire> Reply<'_, Vec<T>> {
    /// Sends `items` as the vector result, written straight into the slot (one copy).
    pub fn send_slice(self, items: &[T]) -> Replied {
        if self.w.wants_length() {
            let mut count = Writer::counting();
            put_slice(&mut count, items);
            self.w.place(count.len());
        }
        put_slice(self.w, items);
        Replied::sent(self.w)
    }
}

impl Reply<'_, String> {
    /// Sends `text` as the string result, written straight into the slot (one copy).
    pub fn send_str(self, text: &str) -> Replied {
        self.w.place(4 + text.len());
        put_str(self.w, text);
        Replied::sent(self.w)
    }
}

/// Reads a message, checking as it goes: from private memory (the server's copy of a request,
/// or a small reply copied out whole), out of which strings and slices can be lent; or straight
/// out of a slot (a large reply), copying each value out before it is checked, so that a large
/// vector or string is copied once, into the caller's buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    src: Src<'a>,
    pos: usize,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
enum Src<'a> {
    Private(&'a [u8]),
    Slot { view: &'a View, base: usize },
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            src: Src::Private(bytes),
            pos: 0,
            len: bytes.len(),
        }
    }

    /// Reads the `len` bytes at `base` of `view`.
    pub(crate) fn slot(view: &'a View, base: usize, len: usize) -> Self {
        Reader {
            src: Src::Slot { view, base },
            pos: 0,
            len,
        }
    }

    /// Bytes not read yet.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.len - self.pos
    }

    /// Moves past the next `n` bytes; where they start.
    #[inline]
    fn advance(&mut self, n: usize) -> Result<usize, Invalid> {
        if n > self.remaining() {
            return Err(Invalid("a length that runs past the end of the message"));
        }
        let at = self.pos;
        self.pos += n;
        Ok(at)
    }

    /// The next `n` bytes, lent out of private memory (only the server lends).
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Invalid> {
        let at = self.advance(n)?;
        match self.src {
            Src::Private(bytes) => Ok(&bytes[at..at + n]),
            Src::Slot { .. } => Err(Invalid("shmrpc bug: a value lent out of shared memory")),
        }
    }

    /// Copies the next `dst.len()` bytes into `dst`.
    #[inline]
    pub fn read(&mut self, dst: &mut [u8]) -> Result<(), Invalid> {
        let at = self.advance(dst.len())?;
        match self.src {
            Src::Private(bytes) => crate::view::copy_private(dst, &bytes[at..at + dst.len()]),
            Src::Slot { view, base } => view.read_at(base + at, dst),
        }
        Ok(())
    }

    /// The next byte.
    #[inline]
    pub fn byte(&mut self) -> Result<u8, Invalid> {
        let mut b = [0];
        self.read(&mut b)?;
        Ok(b[0])
    }

    /// Hands the next `n` bytes to `f` as a private slice: lent, or copied out (to the stack if
    /// they are few, else to the heap).
    #[inline]
    pub fn with_bytes<R>(
        &mut self,
        n: usize,
        f: impl FnOnce(&[u8]) -> Result<R, Invalid>,
    ) -> Result<R, Invalid> {
        if n > self.remaining() {
            return Err(Invalid("a length that runs past the end of the message"));
        }
        match self.src {
            Src::Private(_) => f(self.take(n)?),
            Src::Slot { .. } if n <= 256 => {
                let mut buf = [0u8; 256];
                self.read(&mut buf[..n])?;
                f(&buf[..n])
            }
            Src::Slot { .. } => {
                let mut buf = vec![0u8; n];
                self.read(&mut buf)?;
                f(&buf)
            }
        }
    }

    /// Appends the next `n` bytes to `out`.
    #[inline]
    fn append(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), Invalid> {
        let at = self.advance(n)?;
        match self.src {
            Src::Private(bytes) => out.extend_from_slice(&bytes[at..at + n]),
            Src::Slot { view, base } => {
                // Only ever called on an empty vector: a string's bytes.
                debug_assert!(out.is_empty());
                view.read_into_vec(base + at, n, out);
            }
        }
        Ok(())
    }

    /// Replaces `out` with the next `n` numbers, copied in one piece.
    #[inline]
    fn numbers<T>(&mut self, n: usize, out: &mut Vec<T>) -> Result<(), Invalid>
    where
        T: FromBytes + IntoBytes + zerocopy::Immutable + Copy,
    {
        let bytes = n
            .checked_mul(size_of::<T>())
            .ok_or(Invalid("a count that runs past the end of the message"))?;
        let at = self.advance(bytes)?;
        out.clear();
        match self.src {
            Src::Private(private) => {
                let private = &private[at..at + bytes];
                match <[T]>::ref_from_bytes(private) {
                    Ok(items) => out.extend_from_slice(items),
                    Err(_) => {
                        out.resize(n, T::new_zeroed());
                        crate::view::copy_private(out.as_mut_bytes(), private);
                    }
                }
            }
            Src::Slot { view, base } => view.read_into_vec(base + at, n, out),
        }
        Ok(())
    }

    /// A length or count written by [`Writer::put_len`].
    #[inline]
    pub fn length(&mut self) -> Result<usize, Invalid> {
        let mut b = [0u8; 4];
        self.read(&mut b)?;
        Ok(u32::from_le_bytes(b) as usize)
    }

    /// A count of elements at least `min_len` bytes each, checked against what is left.
    #[inline]
    pub fn count(&mut self, min_len: usize) -> Result<usize, Invalid> {
        let n = self.length()?;
        if min_len == 0 && n > 0 {
            // Refused at compile time (see `Vec`'s `MIN_LEN`): never sent by shmrpc.
            return Err(Invalid("a sequence of values that take no bytes"));
        }
        if n.saturating_mul(min_len) > self.remaining() {
            return Err(Invalid("a count that runs past the end of the message"));
        }
        Ok(n)
    }

    /// Skips the padding [`Writer::align`] wrote.
    #[inline]
    pub fn align(&mut self, align: usize) -> Result<(), Invalid> {
        let pad = padding(self.pos, align);
        self.advance(pad).map(drop)
    }

    /// Text, lent out of the message (only the server lends).
    #[inline]
    pub fn str(&mut self) -> Result<&'a str, Invalid> {
        let n = self.length()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| Invalid("text that is not valid UTF-8"))
    }

    /// Text, into `out` (its buffer reused).
    #[inline]
    pub fn string_into(&mut self, out: &mut String) -> Result<(), Invalid> {
        let n = self.length()?;
        let mut bytes = std::mem::take(out).into_bytes();
        bytes.clear();
        self.append(n, &mut bytes)?;
        *out = String::from_utf8(bytes).map_err(|_| Invalid("text that is not valid UTF-8"))?;
        Ok(())
    }

    /// A sequence, lent out of the message where its elements allow.
    #[inline]
    pub fn seq<T: Wire>(&mut self) -> Result<Seq<'a, T>, Invalid> {
        let n = self.count(T::MIN_LEN)?;
        T::borrow_seq(self, n)
    }

    /// Checks that the message ends here.
    pub fn finish(&self) -> Result<(), Invalid> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Invalid("bytes after the last value of the message"))
        }
    }
}

/// A slice argument as the server's method receives it: lent out of the server's private copy
/// of the request (bytes and numbers), or built from it (other element types, which must be
/// checked one by one).
#[derive(Debug)]
pub enum Seq<'a, T> {
    Borrowed(&'a [T]),
    Owned(Vec<T>),
}

impl<T> std::ops::Deref for Seq<'_, T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Seq::Borrowed(s) => s,
            Seq::Owned(v) => v,
        }
    }
}

/// A value that can cross a call, as an argument or a result: every [`ShmData`] type, `String`,
/// `Vec<T>`, `Box<T>`, `Arc<T>`, `Option<T>` and `Result<T, E>` of these, and `()`. Arguments may
/// also be `&str` and `&[T]`.
///
/// Implemented by shmrpc (and by `#[derive(ShmData)]`): the items are shmrpc's, and change
/// between versions.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross a shmrpc call",
    label = "not a type shmrpc can carry",
    note = "shmrpc carries u8..u128, i8..i128 (not usize/isize), f32, f64, bool, char, arrays [T; N] \
            of those, #[repr(C)] structs and #[repr(u8..u64)] enums with #[derive(shmrpc::ShmData)], \
            String, Vec<T>, Box<T>, Arc<T>, Option<T>, Result<T, E> and () of those; arguments may \
            also be &str and &[T]"
)]
pub trait Wire: Sized + 'static {
    /// What the type looks like, for the interface.
    #[doc(hidden)]
    const SHAPE: &'static Shape;
    /// The fewest bytes a value takes: bounds the count of a sequence before it is allocated.
    #[doc(hidden)]
    const MIN_LEN: usize;
    #[doc(hidden)]
    fn encode(&self, w: &mut Writer<'_>);
    #[doc(hidden)]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid>;

    /// Decodes into `out`, reusing what it holds (a vector's or a string's capacity).
    #[doc(hidden)]
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        *out = Self::decode(r)?;
        Ok(())
    }

    /// A boxed value, never on the stack if the type says how (arrays do).
    #[doc(hidden)]
    #[inline]
    fn decode_boxed(r: &mut Reader<'_>) -> Result<Box<Self>, Invalid> {
        Ok(Box::new(Self::decode(r)?))
    }

    /// Writes `items` (their count is already written): one by one unless the type knows
    /// better.
    #[doc(hidden)]
    #[inline]
    fn encode_seq(items: &[Self], w: &mut Writer<'_>) {
        for item in items {
            item.encode(w);
        }
    }

    /// Reads `n` items (already checked against what is left) into `out`, which is cleared.
    #[doc(hidden)]
    #[inline]
    fn decode_seq_into(r: &mut Reader<'_>, n: usize, out: &mut Vec<Self>) -> Result<(), Invalid> {
        out.clear();
        // Never more than the message could hold, whatever the count says.
        out.reserve(n.min(r.remaining() / size_of::<Self>().max(1)));
        for _ in 0..n {
            out.push(Self::decode(r)?);
        }
        Ok(())
    }

    /// Reads `n` items, lent out of the message if the type allows.
    #[doc(hidden)]
    #[inline]
    fn borrow_seq<'a>(r: &mut Reader<'a>, n: usize) -> Result<Seq<'a, Self>, Invalid> {
        let mut out = Vec::new();
        Self::decode_seq_into(r, n, &mut out)?;
        Ok(Seq::Owned(out))
    }
}

/// Where a message starts in a cache line, in a slot and in a private copy: after the 32 bytes of
/// the request's or response's fields (see `protocol::layout`). Padding is counted from the
/// line's start, so that what is aligned in the message is aligned in memory.
pub(crate) const ORIGIN: usize = 32;

const _: () = assert!(crate::protocol::layout::FIELDS_LEN % 64 == ORIGIN);

/// Zero bytes that take a message at `pos` to a multiple of `align` from [`ORIGIN`] bytes
/// before its start.
#[inline]
fn padding(pos: usize, align: usize) -> usize {
    (ORIGIN + pos).wrapping_neg() & (align - 1)
}

/// Where a sequence of numbers starts: a multiple of 16 bytes from the start of the message's
/// line, or of 64 (a cache line) for 256 bytes or more, which bulk copies need to run at full
/// speed (a 64 KiB copy between 16-aligned ends ran at half the speed on AMD Zen; a 1 KiB echo
/// whose bytes sat 32 bytes into a line took 1.33-1.39x the spin floor on an Intel Xeon).
#[inline]
fn seq_align(bytes: usize) -> usize {
    if bytes >= 256 { 64 } else { 16 }
}

/// Zero bytes before a sequence of numbers of `bytes` bytes whose count ends at `pos` of a
/// message.
pub(crate) fn number_padding(pos: usize, bytes: usize) -> usize {
    padding(pos, seq_align(bytes))
}

/// A private copy of a message: [`ORIGIN`] bytes into a cache line, as in the slot (see
/// [`seq_align`]), grown as needed, kept.
#[derive(Debug, Default)]
pub(crate) struct Private(Vec<Line>);

#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C, align(64))]
struct Line([u8; 64]);

impl Private {
    pub(crate) const EMPTY: Private = Private(Vec::new());

    /// The first `len` bytes, grown to hold them.
    #[inline]
    pub(crate) fn bytes(&mut self, len: usize) -> &mut [u8] {
        if self.0.len() * 64 < ORIGIN + len {
            self.0.resize((ORIGIN + len).div_ceil(64), Line([0; 64]));
        }
        &mut self.0.as_mut_bytes()[ORIGIN..][..len]
    }

    /// Bytes it holds.
    pub(crate) fn capacity(&self) -> usize {
        (self.0.len() * 64).saturating_sub(ORIGIN)
    }
}

/// Numbers: every bit pattern valid, sequences copied and lent in bulk, 16-aligned.
macro_rules! number {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const SHAPE: &'static Shape = <$t as ShmData>::SHAPE;
            const MIN_LEN: usize = size_of::<$t>();
            #[inline]
            fn encode(&self, w: &mut Writer<'_>) {
                w.put(&self.to_le_bytes());
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
                let mut bytes = [0u8; size_of::<$t>()];
                r.read(&mut bytes)?;
                Ok(<$t>::from_le_bytes(bytes))
            }
            #[inline]
            fn encode_seq(items: &[Self], w: &mut Writer<'_>) {
                w.align(seq_align(size_of_val(items)));
                w.put(items.as_bytes());
            }
            #[inline]
            fn decode_seq_into(
                r: &mut Reader<'_>,
                n: usize,
                out: &mut Vec<Self>,
            ) -> Result<(), Invalid> {
                r.align(seq_align(n * size_of::<$t>()))?;
                r.numbers(n, out)
            }
            #[inline]
            fn borrow_seq<'a>(r: &mut Reader<'a>, n: usize) -> Result<Seq<'a, Self>, Invalid> {
                r.align(seq_align(n * size_of::<$t>()))?;
                if let Src::Private(_) = r.src {
                    let bytes = r.take(n * size_of::<$t>())?;
                    if let Ok(items) = <[$t]>::ref_from_bytes(bytes) {
                        return Ok(Seq::Borrowed(items));
                    }
                    // Only if the copy is not aligned: it always is, from the slot.
                    r.pos -= bytes.len();
                }
                let mut out = Vec::new();
                r.numbers(n, &mut out)?;
                Ok(Seq::Owned(out))
            }
        }

        impl ReadNumbers for $t {
            #[inline]
            fn read_numbers(r: &mut Reader<'_>, n: usize) -> Result<Vec<Self>, Invalid> {
                let mut out = Vec::new();
                r.numbers(n, &mut out)?;
                Ok(out)
            }
            #[inline]
            fn read_numbers_into(r: &mut Reader<'_>, out: &mut [Self]) -> Result<(), Invalid> {
                r.read(out.as_mut_bytes())
            }
        }
    )*};
}

/// Numbers read in one piece: for arrays of them.
#[doc(hidden)]
pub trait ReadNumbers: Sized {
    fn read_numbers(r: &mut Reader<'_>, n: usize) -> Result<Vec<Self>, Invalid>;
    fn read_numbers_into(r: &mut Reader<'_>, out: &mut [Self]) -> Result<(), Invalid>;
}

number!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

/// Other fixed types: their `SIZE` bytes, checked by `ShmData::decode`.
macro_rules! checked {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const SHAPE: &'static Shape = <$t as ShmData>::SHAPE;
            const MIN_LEN: usize = <$t as ShmData>::SIZE;
            #[inline]
            fn encode(&self, w: &mut Writer<'_>) {
                ShmData::encode_to(self, w);
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
                decode_fixed(r)
            }
        }
    )*};
}

checked!(bool, char);

/// A fixed value's bytes, checked (for `#[derive(ShmData)]` types and arrays).
#[inline]
pub fn decode_fixed<T: ShmData>(r: &mut Reader<'_>) -> Result<T, Invalid> {
    r.with_bytes(T::SIZE, T::decode)
}

impl<T: ShmData, const N: usize> Wire for [T; N] {
    const SHAPE: &'static Shape = <[T; N] as ShmData>::SHAPE;
    const MIN_LEN: usize = <[T; N] as ShmData>::SIZE;
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        ShmData::encode_to(self, w);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        decode_fixed(r)
    }
    /// In place, element by element (or in one copy for numbers): a big array received into a
    /// box the caller keeps never passes through the stack.
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        T::read_into(r, out)
    }
    /// Through the heap, element by element (or in bulk for numbers): a big array never
    /// passes through the stack.
    fn decode_boxed(r: &mut Reader<'_>) -> Result<Box<Self>, Invalid> {
        let items = T::read_slice(r, N)?;
        Ok(items
            .into_boxed_slice()
            .try_into()
            .unwrap_or_else(|_| unreachable!("decode_slice returns N items")))
    }
}

impl Wire for () {
    const SHAPE: &'static Shape = &Shape::Unit;
    const MIN_LEN: usize = 0;
    #[inline]
    fn encode(&self, _w: &mut Writer<'_>) {}
    #[inline]
    fn decode(_r: &mut Reader<'_>) -> Result<Self, Invalid> {
        Ok(())
    }
}

impl Wire for String {
    const SHAPE: &'static Shape = &Shape::Str;
    const MIN_LEN: usize = 4;
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        put_str(w, self);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        let mut out = String::new();
        r.string_into(&mut out)?;
        Ok(out)
    }
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        r.string_into(out)
    }
}

/// Replies longer than this are written over the request, whose bytes the server copied out
/// before it ran the method: a call then uses one area of the slot both ways, as a bare
/// ping-pong does (with an area each way, a 64 KiB echo took up to twice as long, measured).
/// Shorter ones stay next to the response's fields, which they share a cache line with.
pub(crate) const LARGE_REPLY: usize = 256;

/// Writes a method's result: where the client looks for one of its length.
#[inline]
pub fn send<T>(value: &T, encode: fn(&T, &mut Writer<'_>), w: &mut Writer<'_>) {
    if w.wants_length() {
        let mut count = Writer::counting();
        encode(value, &mut count);
        w.place(count.len());
    }
    encode(value, w);
}

/// Writes a `&str` argument.
#[inline]
pub fn put_str(w: &mut Writer<'_>, s: &str) {
    w.put_len(s.len());
    w.put(s.as_bytes());
}

/// Writes a `&[T]` argument.
#[inline]
pub fn put_slice<T: Wire>(w: &mut Writer<'_>, items: &[T]) {
    w.put_len(items.len());
    T::encode_seq(items, w);
}

/// Why a sequence's elements must take bytes: a count of values that take none would be
/// bounded by nothing, and decoding it would allocate and loop without end.
const NO_EMPTY_ELEMENTS: &str = "a Vec or slice of values that take no bytes on the wire (`()`, \
    `[T; 0]`, a struct without fields) cannot cross a shmrpc call: send the count as a number";

impl<T: Wire> Wire for Vec<T> {
    const SHAPE: &'static Shape = &Shape::Seq(T::SHAPE);
    const MIN_LEN: usize = {
        assert!(T::MIN_LEN > 0, "{}", NO_EMPTY_ELEMENTS);
        4
    };
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        put_slice(w, self);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        let mut out = Vec::new();
        Self::decode_into(r, &mut out)?;
        Ok(out)
    }
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        let n = r.count(T::MIN_LEN)?;
        T::decode_seq_into(r, n, out)
    }
}

impl<T: Wire> Wire for Box<T> {
    const SHAPE: &'static Shape = T::SHAPE;
    const MIN_LEN: usize = T::MIN_LEN;
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        (**self).encode(w);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        T::decode_boxed(r)
    }
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        T::decode_into(r, out)
    }
}

impl<T: Wire> Wire for Arc<T> {
    const SHAPE: &'static Shape = T::SHAPE;
    const MIN_LEN: usize = T::MIN_LEN;
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        (**self).encode(w);
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        T::decode_boxed(r).map(Arc::from)
    }
    /// Reuses the value if no other `Arc` shares it.
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        match Arc::get_mut(out) {
            Some(value) => T::decode_into(r, value),
            None => {
                *out = Self::decode(r)?;
                Ok(())
            }
        }
    }
}

impl<T: Wire> Wire for Option<T> {
    const SHAPE: &'static Shape = &Shape::Option(T::SHAPE);
    const MIN_LEN: usize = 1;
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        match self {
            None => w.put(&[0]),
            Some(v) => {
                w.put(&[1]);
                v.encode(w);
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        match r.byte()? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            _ => Err(Invalid("an Option tag other than None or Some")),
        }
    }
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        match (r.byte()?, out.as_mut()) {
            (0, _) => *out = None,
            (1, Some(value)) => T::decode_into(r, value)?,
            (1, None) => *out = Some(T::decode(r)?),
            _ => return Err(Invalid("an Option tag other than None or Some")),
        }
        Ok(())
    }
}

impl<T: Wire, E: Wire> Wire for Result<T, E> {
    const SHAPE: &'static Shape = &Shape::Result(T::SHAPE, E::SHAPE);
    const MIN_LEN: usize = 1;
    #[inline]
    fn encode(&self, w: &mut Writer<'_>) {
        match self {
            Ok(v) => {
                w.put(&[0]);
                v.encode(w);
            }
            Err(e) => {
                w.put(&[1]);
                e.encode(w);
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, Invalid> {
        match r.byte()? {
            0 => T::decode(r).map(Ok),
            1 => E::decode(r).map(Err),
            _ => Err(Invalid("a Result tag other than Ok or Err")),
        }
    }
    #[inline]
    fn decode_into(r: &mut Reader<'_>, out: &mut Self) -> Result<(), Invalid> {
        match (r.byte()?, out.as_mut()) {
            (0, Ok(value)) => T::decode_into(r, value)?,
            (0, Err(_)) => *out = Ok(T::decode(r)?),
            (1, _) => *out = Err(E::decode(r)?),
            _ => return Err(Invalid("a Result tag other than Ok or Err")),
        }
        Ok(())
    }
}

/// How generated code writes and reads one argument or result type: built by [`codec`], the
/// one place where the type must be [`Wire`], so a wrong type is reported once, on its span.
#[doc(hidden)]
#[derive(Debug)]
pub struct WireCodec<T> {
    pub shape: &'static Shape,
    pub min_len: usize,
    pub encode: fn(&T, &mut Writer<'_>),
    pub decode: fn(&mut Reader<'_>) -> Result<T, Invalid>,
    pub decode_into: fn(&mut Reader<'_>, &mut T) -> Result<(), Invalid>,
}

#[doc(hidden)]
pub const fn codec<T: Wire>() -> WireCodec<T> {
    WireCodec {
        shape: T::SHAPE,
        min_len: T::MIN_LEN,
        encode: T::encode,
        decode: T::decode,
        decode_into: T::decode_into,
    }
}

/// As [`WireCodec`], for a `&[T]` argument.
#[doc(hidden)]
#[derive(Debug)]
pub struct SliceCodec<T: 'static> {
    pub shape: &'static Shape,
    pub encode: fn(&mut Writer<'_>, &[T]),
    pub borrow: for<'a> fn(&mut Reader<'a>) -> Result<Seq<'a, T>, Invalid>,
}

#[doc(hidden)]
pub const fn slice_codec<T: Wire>() -> SliceCodec<T> {
    assert!(T::MIN_LEN > 0, "{}", NO_EMPTY_ELEMENTS);
    SliceCodec {
        shape: <Vec<T> as Wire>::SHAPE,
        encode: put_slice::<T>,
        borrow: borrow_seq::<T>,
    }
}

fn borrow_seq<'a, T: Wire>(r: &mut Reader<'a>) -> Result<Seq<'a, T>, Invalid> {
    r.seq()
}

/// The shape of `&str`.
#[doc(hidden)]
pub const STR_SHAPE: &Shape = &Shape::Str;

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: Wire>(v: &T) -> Vec<u8> {
        let mut buf = Vec::new();
        v.encode(&mut Writer::buf(&mut buf));
        buf
    }

    /// Shared memory of 64 KiB, mapped.
    fn segment() -> View {
        let memory = crate::sys::create_sealed("wire-test", 65536).unwrap();
        View::new(crate::sys::Mapping::new(&memory, 65536).unwrap())
    }

    /// Through private memory, and through shared memory at an odd offset: written piece by
    /// piece into the slot, read back value by value out of it.
    fn round_trip<T: Wire + PartialEq + std::fmt::Debug>(v: T) {
        let buf = bytes_of(&v);
        let mut r = Reader::new(&buf);
        assert_eq!(T::decode(&mut r).unwrap(), v);
        r.finish().unwrap();
        let view = segment();
        let mut w = Writer::slot(&view, 13, 60000);
        v.encode(&mut w);
        assert!(!w.too_large());
        assert_eq!(w.len(), buf.len());
        let mut r = Reader::slot(&view, 13, buf.len());
        assert_eq!(T::decode(&mut r).unwrap(), v);
        r.finish().unwrap();
        let mut copy = vec![0; buf.len()];
        view.read_at(13, &mut copy);
        assert_eq!(copy, buf, "the same bytes either way");
    }

    #[test]
    fn values_round_trip() {
        round_trip(7u64);
        round_trip(String::from("héllo"));
        round_trip(vec![1u8, 2, 3]);
        round_trip(vec![1.5f64, -2.0]);
        round_trip(vec![String::from("a"), String::new(), String::from("ccc")]);
        round_trip(Some(vec![9u32; 5]));
        round_trip(None::<Vec<u8>>);
        round_trip(Ok::<Vec<u16>, String>(vec![1, 2]));
        round_trip(Err::<Vec<u16>, String>("no".into()));
        round_trip(Box::new([3u8; 10]));
        round_trip(Arc::new(vec![true, false]));
        round_trip(vec![[1u8, 2], [3, 4]]);
        round_trip(Box::new([0x1234_5678u32; 1000]));
        // Fixed values read out of a slot through a buffer on the stack, or, past 256 bytes,
        // on the heap.
        round_trip([true; 256]);
        round_trip([true; 300]);
        round_trip(Some(['é'; 100]));
        round_trip(vec![[true, false]; 3]);
        round_trip((0..3000).map(|i| i as u16).collect::<Vec<_>>());
        round_trip(());
    }

    #[test]
    fn numbers_are_aligned_from_the_start_of_the_message() {
        let mut buf = Vec::new();
        let mut w = Writer::buf(&mut buf);
        Wire::encode(&7u8, &mut w);
        put_slice(&mut w, &[1u64, 2]);
        // 1 byte, 4 of count, 11 of padding, 16 of numbers.
        assert_eq!(buf.len(), 32);
        assert_eq!(&buf[5..16], &[0; 11]);
        // From 256 bytes of numbers on, a cache line, counted from the line the message starts
        // `ORIGIN` bytes into.
        let mut big = Vec::new();
        put_slice(&mut Writer::buf(&mut big), &[7u32; 64]);
        assert_eq!(big.len(), 32 + 256);
        assert_eq!(&big[4..32], &[0; 28]);
        // Lent out of an aligned copy.
        let mut aligned = Private::default();
        let copy = aligned.bytes(buf.len());
        copy.copy_from_slice(&buf);
        assert_eq!(copy.as_ptr() as usize % 64, ORIGIN);
        let mut r = Reader::new(copy);
        assert_eq!(<u8 as Wire>::decode(&mut r), Ok(7));
        let seq = r.seq::<u64>().unwrap();
        assert!(matches!(seq, Seq::Borrowed(&[1, 2])));
        r.finish().unwrap();
    }

    #[test]
    fn a_private_copy_keeps_its_room_and_its_place_in_a_line() {
        let mut p = Private::default();
        assert_eq!(p.bytes(0).len(), 0);
        assert_eq!(p.bytes(1000).len(), 1000);
        let room = p.capacity();
        assert!(room >= 1000);
        assert_eq!(p.bytes(10).as_ptr() as usize % 64, ORIGIN);
        assert_eq!(
            p.capacity(),
            room,
            "a shorter message must not shrink the copy"
        );
    }

    #[test]
    fn hostile_lengths_are_refused_before_anything_is_allocated() {
        // A count of 2^32-1 u64 in a 100-byte message.
        let mut msg = u32::MAX.to_le_bytes().to_vec();
        msg.resize(100, 0);
        assert_eq!(
            Vec::<u64>::decode(&mut Reader::new(&msg)),
            Err(Invalid("a count that runs past the end of the message"))
        );
        // Strings: each takes at least its 4-byte length.
        let mut msg = 24u32.to_le_bytes().to_vec();
        msg.resize(100, 0);
        assert_eq!(
            Vec::<String>::decode(&mut Reader::new(&msg)).unwrap().len(),
            24
        );
        let mut msg = 25u32.to_le_bytes().to_vec();
        msg.resize(100, 0);
        assert!(Vec::<String>::decode(&mut Reader::new(&msg)).is_err());
        // A string longer than the message.
        let mut msg = 97u32.to_le_bytes().to_vec();
        msg.resize(100, b'a');
        assert!(String::decode(&mut Reader::new(&msg)).is_err());
        // Invalid UTF-8.
        let msg = [2, 0, 0, 0, 0xC3, 0x28];
        assert_eq!(
            String::decode(&mut Reader::new(&msg)),
            Err(Invalid("text that is not valid UTF-8"))
        );
        // Tags.
        assert!(Option::<u8>::decode(&mut Reader::new(&[2, 0])).is_err());
        assert!(Result::<u8, u8>::decode(&mut Reader::new(&[7, 0])).is_err());
        assert!(<bool as Wire>::decode(&mut Reader::new(&[2])).is_err());
        // Trailing bytes.
        let mut r = Reader::new(&[1, 0, 0, 0, 0]);
        <u32 as Wire>::decode(&mut r).unwrap();
        assert!(r.finish().is_err());
    }

    /// Decodes `v` into `out`, whatever `out` held before.
    fn round_trip_into<T: Wire + PartialEq + std::fmt::Debug>(v: T, mut out: T) {
        let buf = bytes_of(&v);
        let mut r = Reader::new(&buf);
        T::decode_into(&mut r, &mut out).unwrap();
        r.finish().unwrap();
        assert_eq!(out, v);
    }

    #[test]
    fn decoding_into_gives_the_value_whatever_was_there() {
        round_trip_into(Some(vec![1u8]), None);
        round_trip_into(Some(5u64), Some(9u64));
        round_trip_into(Ok::<u8, u8>(1), Ok(2));
        round_trip_into(None, Some(vec![1u8]));
        round_trip_into(Some(vec![2u8, 3]), Some(vec![9u8; 10]));
        round_trip_into(Ok::<_, String>(vec![1u16]), Err("x".into()));
        round_trip_into(Err::<Vec<u16>, _>("y".to_owned()), Ok(vec![1u16]));
        round_trip_into(Ok::<_, String>(vec![5u16]), Ok(vec![6u16, 7]));
        round_trip_into(Box::new([4u8; 300]), Box::new([0u8; 300]));
        round_trip_into(Box::new([[1u16, 2]; 3]), Box::new([[0u16; 2]; 3]));
        round_trip_into(Arc::new(String::from("new")), Arc::new(String::from("old")));
        round_trip_into(String::from("abc"), String::from("longer before"));
        // An `Arc` another holder shares is replaced, not written through.
        let shared = Arc::new(vec![1u8]);
        let mut out = shared.clone();
        let buf = bytes_of(&Arc::new(vec![2u8]));
        <Arc<Vec<u8>>>::decode_into(&mut Reader::new(&buf), &mut out).unwrap();
        assert_eq!((&*shared, &*out), (&vec![1u8], &vec![2u8]));
    }

    #[test]
    fn text_is_lent_out_of_a_private_message_only() {
        let buf = bytes_of(&String::from("lent"));
        let mut r = Reader::new(&buf);
        assert_eq!(r.str(), Ok("lent"));
        let view = segment();
        view.write_at(0, &buf);
        assert!(Reader::slot(&view, 0, buf.len()).str().is_err());
    }

    #[test]
    fn a_sequence_reserves_no_more_than_the_message_could_hold() {
        // 24 strings claimed in 100 bytes (24 would fit, empty), the first running past the end.
        let mut msg = 24u32.to_le_bytes().to_vec();
        msg.extend_from_slice(&200u32.to_le_bytes());
        msg.resize(100, 0);
        let mut r = Reader::new(&msg);
        let n = r.count(String::MIN_LEN).unwrap();
        let mut out = Vec::new();
        assert!(String::decode_seq_into(&mut r, n, &mut out).is_err());
        // 96 bytes left: at most 4 `String`s of 24 bytes.
        assert!(out.capacity() <= 4, "reserved {}", out.capacity());
    }

    #[test]
    fn a_sequence_of_values_that_take_no_bytes_is_refused() {
        let msg = 5u32.to_le_bytes();
        assert_eq!(
            Reader::new(&msg).count(0),
            Err(Invalid("a sequence of values that take no bytes"))
        );
        assert_eq!(Reader::new(&0u32.to_le_bytes()).count(0), Ok(0));
    }

    #[test]
    fn decoding_into_reuses_what_the_caller_holds() {
        let buf = bytes_of(&vec![5u8; 100]);
        let mut out = Vec::with_capacity(1000);
        let before = out.as_ptr();
        Vec::<u8>::decode_into(&mut Reader::new(&buf), &mut out).unwrap();
        assert_eq!(out, vec![5u8; 100]);
        assert_eq!(out.as_ptr(), before);
        let buf = bytes_of(&Some(String::from("abc")));
        let mut out = Some(String::with_capacity(64));
        Option::<String>::decode_into(&mut Reader::new(&buf), &mut out).unwrap();
        assert_eq!(out.as_deref(), Some("abc"));
        assert_eq!(out.unwrap().capacity(), 64);
    }

    #[test]
    fn a_writer_past_its_limit_counts_and_says_so() {
        let mut buf = Vec::new();
        let mut w = Writer::buf(&mut buf);
        w.limit = 8;
        put_str(&mut w, "hello world");
        assert_eq!(w.len(), 15);
        assert!(w.too_large());
        // Exactly at the limit fits.
        let mut buf = Vec::new();
        let mut w = Writer::buf(&mut buf);
        w.limit = 15;
        put_str(&mut w, "hello world");
        assert!(!w.too_large());
        let mut w = Writer::buf(&mut buf);
        w.put_len(u32::MAX as usize + 1);
        assert!(w.too_large(), "a length over u32::MAX");
        // The length fitted; the text did not, and was not written.
        assert_eq!(buf.len(), 4);
    }
}
