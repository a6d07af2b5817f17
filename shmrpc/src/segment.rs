//! A service's shared-memory segment: how a server creates and publishes it, how a server that
//! died is told from one that lives, and how a client opens and checks it.
//!
//! # Publishing without races
//!
//! A server never creates its object under the service's name. It creates a private object
//! (`shmrpc.<name>~<pid>.<n>`, with `O_CREAT | O_EXCL` and its mode set exactly), locks it,
//! allocates every page, writes the header, and only then renames it to `shmrpc.<name>` with
//! `RENAME_NOREPLACE`. So the name only ever shows a complete segment whose server holds its
//! liveness lock, and two servers binding at once cannot both win.
//!
//! If the name is taken, the old object's liveness lock tells whether its server lives: the
//! kernel drops that lock when the process dies. A dead server's object is removed (while
//! holding its lock, and only if it is still linked, so two reclaimers cannot remove each
//! other's work) and the rename is tried again.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::Error;
use crate::doorbell::Doorbell;
use crate::layout::{self, Geometry, HeaderError, HeaderImage, ServerState};
use crate::lock::Lock;
use crate::name::ServiceName;
use crate::sys;
use crate::view::View;

/// A mapped segment, from the server's or a client's side.
#[derive(Debug)]
pub(crate) struct Segment {
    fd: OwnedFd,
    view: View,
    image: HeaderImage,
    /// Set once the server has taken its name back: only the first unpublish removes the name,
    /// and repairs no longer mark the segment ready.
    unpublished: std::sync::atomic::AtomicBool,
}

/// The control words and payload areas of the slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a> {
    /// Exec region (written by the client holding the lock).
    pub(crate) exec: Doorbell<'a>,
    pub(crate) req_seq: &'a AtomicU64,
    pub(crate) method: &'a AtomicU32,
    pub(crate) req_len: &'a AtomicU32,
    pub(crate) withdrawn: &'a AtomicU64,
    /// Done region (written by the server).
    pub(crate) done: Doorbell<'a>,
    pub(crate) status: &'a AtomicU32,
    pub(crate) resp_seq: &'a AtomicU64,
    pub(crate) resp_len: &'a AtomicU32,
    /// Taken line (written by the server).
    pub(crate) taken: &'a AtomicU64,
    /// Set by a client that found damage; cleared by the server when it repaired.
    pub(crate) repair: &'a AtomicU32,
    view: &'a View,
    done_offset: usize,
    capacity: usize,
}

impl Slot<'_> {
    /// Bytes each payload area holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies `bytes` into the request area.
    pub(crate) fn write_request(&self, bytes: &[u8]) {
        assert!(
            bytes.len() <= self.capacity,
            "shmrpc bug: request larger than the slot"
        );
        self.view
            .write(layout::EXEC_OFFSET + layout::FIELDS_LEN, bytes);
    }

    /// Copies the first `dst.len()` bytes of the request area out.
    pub(crate) fn read_request(&self, dst: &mut [u8]) {
        assert!(
            dst.len() <= self.capacity,
            "shmrpc bug: read larger than the slot"
        );
        self.view
            .read(layout::EXEC_OFFSET + layout::FIELDS_LEN, dst);
    }

    /// Copies `bytes` into the response area.
    pub(crate) fn write_response(&self, bytes: &[u8]) {
        assert!(
            bytes.len() <= self.capacity,
            "shmrpc bug: response larger than the slot"
        );
        self.view
            .write(self.done_offset + layout::FIELDS_LEN, bytes);
    }

    /// Copies the first `dst.len()` bytes of the response area out.
    pub(crate) fn read_response(&self, dst: &mut [u8]) {
        assert!(
            dst.len() <= self.capacity,
            "shmrpc bug: read larger than the slot"
        );
        self.view.read(self.done_offset + layout::FIELDS_LEN, dst);
    }
}

/// What the name shows, looked at without changing anything.
enum Existing {
    Missing,
    Alive { pid: u32 },
    Dead { generation: Option<u64> },
}

/// How an open by name failed, before it becomes an [`Error`] with the caller's context.
#[derive(Debug)]
pub(crate) enum OpenError {
    NotRunning,
    Mismatch(String),
    Corrupted(String),
    Error(Error),
}

fn os_error(name: &ServiceName, object: &str, what: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Error::PermissionDenied {
            name: name.as_str().to_owned(),
            path: sys::object_path(object),
            detail: format!("{what}: {e}"),
        },
        _ => Error::io(
            format!(
                "{what} {} for `{}`",
                sys::object_path(object),
                name.as_str()
            ),
            e,
        ),
    }
}

impl Segment {
    /// Server side: creates, initialises and publishes the segment of `name`.
    pub(crate) fn publish(
        name: &ServiceName,
        mode: u32,
        fingerprint: u128,
        capacity: usize,
        description: &str,
    ) -> Result<Segment, Error> {
        let object = name.object();
        sweep_unpublished(name);
        let mut generation = fresh_generation();
        match look(name, &object)? {
            Existing::Alive { pid } => return Err(already_running(name, pid)),
            Existing::Dead {
                generation: Some(g),
            } => generation = generation.max(g + 1),
            Existing::Dead { generation: None } | Existing::Missing => {}
        }
        if capacity > layout::MAX_CAPACITY || description.len() > layout::MAX_DESCRIPTION {
            return Err(Error::io(
                format!("binding `{}`", name.as_str()),
                io::Error::new(io::ErrorKind::InvalidInput, "slot capacity above 1 GiB"),
            ));
        }
        let geometry = Geometry {
            capacity,
            description_len: description.len(),
        };
        let mut image = HeaderImage {
            generation,
            fingerprint,
            geometry,
            server_pid: sys::pid(),
            server_uid: sys::euid(),
        };
        let temp = unpublished_object(name);
        let segment = Segment::create(name, &temp, mode, image, description)?;
        let result = segment.publish_as(name, &object, &temp, &mut image);
        if result.is_err() {
            let _ = sys::unlink(&temp);
        }
        result.map(|()| Segment { image, ..segment })
    }

    fn create(
        name: &ServiceName,
        temp: &str,
        mode: u32,
        image: HeaderImage,
        description: &str,
    ) -> Result<Segment, Error> {
        // Errors name the object users know, not the private name it has until published.
        let object = name.object();
        let fd = sys::create_exclusive(temp, mode)
            .map_err(|e| os_error(name, &object, "cannot create", e))?;
        let build = || -> Result<Segment, Error> {
            if !sys::try_lock(&fd).map_err(|e| os_error(name, &object, "cannot lock", e))? {
                return Err(Error::io(
                    "locking a new object",
                    io::Error::other("locked by another"),
                ));
            }
            let len = image.geometry.total_len();
            sys::allocate(&fd, len as u64).map_err(|e| {
                let e = if e.raw_os_error() == Some(libc::ENOSPC) {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{e}: /dev/shm has no room for {len} bytes; free some or make it larger"
                        ),
                    )
                } else {
                    e
                };
                os_error(name, &object, "cannot allocate", e)
            })?;
            let map = sys::Mapping::new(&fd, len)
                .map_err(|e| os_error(name, &object, "cannot map", e))?;
            let segment = Segment {
                fd,
                view: View::new(map),
                image,
                unpublished: Default::default(),
            };
            segment.write_header(&image);
            segment
                .view
                .write(image.geometry.description_offset(), description.as_bytes());
            segment
                .server_state()
                .store(ServerState::Ready as u32, Ordering::Release);
            Ok(segment)
        };
        build().inspect_err(|_| {
            let _ = sys::unlink(temp);
        })
    }

    fn publish_as(
        &self,
        name: &ServiceName,
        object: &str,
        temp: &str,
        image: &mut HeaderImage,
    ) -> Result<(), Error> {
        for _ in 0..16 {
            match sys::rename_no_replace(temp, object) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(os_error(name, object, "cannot publish", e)),
            }
            match reclaim(name, object)? {
                Existing::Alive { pid } => return Err(already_running(name, pid)),
                Existing::Dead {
                    generation: Some(g),
                } if g >= image.generation => {
                    image.generation = g + 1;
                    self.write_header(image);
                }
                _ => {}
            }
        }
        Err(Error::io(
            format!("publishing `{}`", name.as_str()),
            io::Error::other(
                "the name kept changing under us: another process is binding it in a loop",
            ),
        ))
    }

    /// Client side: opens the segment of `name` and checks it.
    pub(crate) fn open(name: &ServiceName) -> Result<Segment, OpenError> {
        let object = name.object();
        let fd = match sys::open_existing(&object) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::NotRunning),
            Err(e) => return Err(OpenError::Error(os_error(name, &object, "cannot open", e))),
        };
        let io = |what, e| OpenError::Error(os_error(name, &object, what, e));
        if !sys::is_locked_by_other(&fd).map_err(|e| io("cannot probe", e))? {
            // A server died and left this behind; the next bind removes it.
            return Err(OpenError::NotRunning);
        }
        let (size, _) = sys::stat(&fd).map_err(|e| io("cannot stat", e))?;
        let largest = Geometry {
            capacity: layout::MAX_CAPACITY,
            description_len: layout::MAX_DESCRIPTION,
        };
        let min = Geometry {
            capacity: 1,
            description_len: 0,
        }
        .total_len() as u64;
        if size < min || size > largest.total_len() as u64 {
            return Err(OpenError::Corrupted(format!(
                "the object is {size} bytes long"
            )));
        }
        // Checked against the object's size, so no access to the mapping can fault.
        let map = sys::Mapping::new(&fd, size as usize).map_err(|e| io("cannot map", e))?;
        let view = View::new(map);
        let header = read_header(&view);
        if header.is_err() {
            // Whatever is wrong, ask the server to repair it and wake it (the repair flag and the
            // doorbells sit at fixed offsets, whatever the header says).
            ask_for_repair(&view);
        }
        let image = match header {
            Ok(image) => image,
            Err(HeaderError::Version(v)) => {
                return Err(OpenError::Mismatch(format!(
                    "the server speaks shmrpc protocol {v}, this client {}; build both with the same \
                     shmrpc version",
                    layout::PROTOCOL_VERSION
                )));
            }
            Err(HeaderError::Garbage(what)) => return Err(OpenError::Corrupted(what.to_owned())),
        };
        if image.geometry.total_len() as u64 != size {
            return Err(OpenError::Corrupted(
                "the object's size does not match its header".into(),
            ));
        }
        let segment = Segment {
            fd,
            view,
            image,
            unpublished: Default::default(),
        };
        if segment.server_state().load(Ordering::Acquire) != ServerState::Ready as u32 {
            // A live server whose state word says otherwise was written over: have it repaired.
            ask_for_repair(&segment.view);
            return Err(OpenError::Corrupted(
                "the server's state word is not `ready`".into(),
            ));
        }
        Ok(segment)
    }

    /// Client side: whether the header still says what it said at open (a connection whose
    /// header changed is opened again). Asks for a repair if not.
    pub(crate) fn header_unchanged(&self) -> bool {
        let same = read_header(&self.view) == Ok(self.image);
        if !same {
            ask_for_repair(&self.view);
        }
        same
    }

    /// The header this side trusts: the server's own, or what the client validated at open.
    pub(crate) fn image(&self) -> &HeaderImage {
        &self.image
    }

    /// The description text as it is in the segment now (a validated copy).
    pub(crate) fn read_description(&self) -> Result<String, OpenError> {
        let mut bytes = vec![0u8; self.image.geometry.description_len];
        self.view
            .read(self.image.geometry.description_offset(), &mut bytes);
        String::from_utf8(bytes)
            .map_err(|_| OpenError::Corrupted("description is not UTF-8".into()))
    }

    /// Whether the segment holds `expected` as its description; compares piecewise, without
    /// allocating (the server checks this often while it serves).
    fn description_is(&self, expected: &str) -> bool {
        let expected = expected.as_bytes();
        if expected.len() != self.image.geometry.description_len {
            return false;
        }
        let mut chunk = [0u8; 256];
        let offset = self.image.geometry.description_offset();
        let step = chunk.len();
        expected.chunks(step).enumerate().all(|(i, want)| {
            let got = &mut chunk[..want.len()];
            self.view.read(offset + i * step, got);
            got == want
        })
    }

    /// Whether a process other than this one's open file holds the liveness lock, i.e. the server
    /// lives (as seen by a client).
    pub(crate) fn server_alive(&self) -> bool {
        // If the probe itself fails, say alive: the call then ends at its timeout rather than
        // with a wrong `ServerDied`.
        sys::is_locked_by_other(&self.fd).unwrap_or(true)
    }

    pub(crate) fn server_state(&self) -> &AtomicU32 {
        self.view.u32(layout::HEADER_OFFSET + layout::header::STATE)
    }

    pub(crate) fn lock(&self) -> Lock<'_> {
        let word = self.view.u64(layout::LOCK_OFFSET + layout::lock::WORD);
        // The futex is the low half of the word.
        let low = if cfg!(target_endian = "little") { 0 } else { 4 };
        let futex = self
            .view
            .u32(layout::LOCK_OFFSET + layout::lock::WORD + low);
        Lock::new(
            word,
            futex,
            self.view
                .u64(layout::LOCK_OFFSET + layout::lock::HANDOFF_AT),
        )
    }

    pub(crate) fn slot(&self) -> Slot<'_> {
        let v = &self.view;
        let exec = |off| layout::EXEC_OFFSET + off;
        let done_offset = self.image.geometry.done_offset();
        let done = |off| done_offset + off;
        Slot {
            exec: Doorbell::new(v.u32(layout::EXEC_BELL_OFFSET)),
            req_seq: v.u64(exec(layout::exec::SEQ)),
            method: v.u32(exec(layout::exec::METHOD)),
            req_len: v.u32(exec(layout::exec::LEN)),
            withdrawn: v.u64(exec(layout::exec::WITHDRAWN)),
            done: Doorbell::new(v.u32(layout::DONE_BELL_OFFSET)),
            status: v.u32(done(layout::done::STATUS)),
            resp_seq: v.u64(done(layout::done::SEQ)),
            resp_len: v.u32(done(layout::done::LEN)),
            taken: v.u64(layout::TAKEN_OFFSET + layout::taken::SEQ),
            repair: v.u32(layout::TAKEN_OFFSET + layout::taken::REPAIR),
            view: v,
            done_offset,
            capacity: self.image.geometry.capacity,
        }
    }

    fn write_header(&self, image: &HeaderImage) {
        let bytes = image.encode();
        // The state word sits inside the encoded range; write around it.
        let state = layout::header::STATE;
        self.view
            .write_words(layout::HEADER_OFFSET, &bytes[..state]);
        self.view
            .write_words(layout::HEADER_OFFSET + state + 4, &bytes[state + 4..]);
    }

    /// Server side: puts back whatever another process changed in the header or description.
    /// Returns `true` if anything had to be repaired.
    pub(crate) fn repair(&self, description: &str) -> bool {
        let mut damaged = read_header(&self.view) != Ok(self.image);
        if damaged {
            self.write_header(&self.image);
        }
        if !self.unpublished.load(Ordering::Acquire)
            && self.server_state().load(Ordering::Relaxed) != ServerState::Ready as u32
        {
            self.server_state()
                .store(ServerState::Ready as u32, Ordering::Release);
            damaged = true;
        }
        if !self.description_is(description) {
            self.view.write(
                self.image.geometry.description_offset(),
                description.as_bytes(),
            );
            damaged = true;
        }
        damaged
    }

    /// Server side: marks the segment stopped and removes the name if it is still ours.
    pub(crate) fn unpublish(&self, name: &ServiceName) {
        self.server_state()
            .store(ServerState::Stopped as u32, Ordering::Release);
        if matches!(sys::stat(&self.fd), Ok((_, links)) if links > 0) {
            let _ = sys::unlink(&name.object());
        }
    }
}

/// Asks a (possibly busy) server to check its segment for damage, and wakes it if it sleeps.
fn ask_for_repair(view: &View) {
    view.u32(layout::TAKEN_OFFSET + layout::taken::REPAIR)
        .store(1, Ordering::Relaxed);
    Doorbell::new(view.u32(layout::EXEC_BELL_OFFSET)).knock();
}

fn read_header(view: &View) -> Result<HeaderImage, HeaderError> {
    let mut bytes = [0u8; layout::header::LEN];
    view.read_words(layout::HEADER_OFFSET, &mut bytes);
    HeaderImage::decode(&bytes)
}

/// A generation number that grows across restarts: the wall clock in nanoseconds.
fn fresh_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn unpublished_object(name: &ServiceName) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{}.{n}", name.unpublished_prefix(), sys::pid())
}

/// Looks at what the name shows, without changing anything.
fn look(name: &ServiceName, object: &str) -> Result<Existing, Error> {
    let fd = match sys::open_existing(object) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(stale_error(name, object, e)),
    };
    let alive =
        sys::is_locked_by_other(&fd).map_err(|e| os_error(name, object, "cannot probe", e))?;
    Ok(describe(&fd, alive))
}

fn describe(fd: &OwnedFd, alive: bool) -> Existing {
    let header = sys::stat(fd)
        .ok()
        .filter(|(size, _)| {
            *size
                >= Geometry {
                    capacity: 1,
                    description_len: 0,
                }
                .total_len() as u64
        })
        .and_then(|_| sys::Mapping::new(fd, layout::HEADER_LEN).ok())
        .and_then(|map| read_header(&View::new(map)).ok());
    if alive {
        Existing::Alive {
            pid: header.map_or(0, |h| h.server_pid),
        }
    } else {
        Existing::Dead {
            generation: header.map(|h| h.generation),
        }
    }
}

/// Removes a dead server's object from the name, if its server is indeed dead.
fn reclaim(name: &ServiceName, object: &str) -> Result<Existing, Error> {
    let fd = match sys::open_existing(object) {
        Ok(fd) => fd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(stale_error(name, object, e)),
    };
    // Holding the lock makes us the only one who may remove this object.
    if !sys::try_lock(&fd).map_err(|e| os_error(name, object, "cannot lock", e))? {
        return Ok(describe(&fd, true));
    }
    let found = describe(&fd, false);
    match sys::stat(&fd) {
        Ok((_, links)) if links > 0 => match sys::unlink(object) {
            Ok(()) => Ok(found),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Missing),
            Err(e) => Err(stale_error(name, object, e)),
        },
        // Already removed by someone else; the name now shows another object.
        _ => Ok(Existing::Missing),
    }
}

fn already_running(name: &ServiceName, pid: u32) -> Error {
    Error::AlreadyRunning {
        name: name.as_str().to_owned(),
        pid,
    }
}

fn stale_error(name: &ServiceName, object: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        let owner = sys::open_existing(object)
            .ok()
            .and_then(|fd| sys::owner(&fd).ok());
        Error::PermissionDenied {
            name: name.as_str().to_owned(),
            path: sys::object_path(object),
            detail: format!(
                "the name is held by another user's server{} and this user may not open or remove it",
                owner.map(|uid| format!(" (uid {uid})")).unwrap_or_default()
            ),
        }
    } else {
        os_error(name, object, "cannot open", e)
    }
}

/// Removes objects of servers that died between create and publish. An object whose creator
/// (the pid in its name) still runs is left alone: it may be between create and lock.
fn sweep_unpublished(name: &ServiceName) {
    let prefix = name.unpublished_prefix();
    let Ok(objects) = sys::list_objects(&prefix) else {
        return;
    };
    for object in objects {
        let creator = object[prefix.len()..]
            .split('.')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if creator.is_some_and(sys::process_exists) {
            continue;
        }
        if let Ok(fd) = sys::open_existing(&object)
            && sys::try_lock(&fd).unwrap_or(false)
        {
            let _ = sys::unlink(&object);
        }
    }
}
