// A compiled-out method, a raw identifier, a renamed runtime crate and a tuple struct.

#[derive(ShmData)]
#[shmrpc(crate = "::rpc")]
#[repr(transparent)]
pub struct Id(pub u64);

#[shm_service(crate = "::rpc")]
pub(crate) trait Registry {
    /// Looks an id up.
    fn r#type(&self, id: Id) -> Option<Id>;
    #[cfg(feature = "admin")]
    fn wipe(&self);
    fn ping(&self);
}
