//! What the server's connections may hold, so that no client, and no other user, can run the
//! server out of descriptors or mappings.
//!
//! Every connection costs the server descriptors (its socket, the client's pidfd, a wake-up
//! socket per slot) and mappings (one per slot). The budget is what the process may have, less
//! what it had open when the server was bound and room for the application's own files: the
//! soft limit on open files (which `bind` raised to the hard limit) and half of
//! `vm.max_map_count`. Past it, new connections and slots are
//! refused with the reason, and the server goes on serving those it has. A user other than the
//! server's own may hold at most half of it, so that one admitted user cannot lock out the
//! others.

use std::collections::HashMap;

/// What a connection or a slot holds in the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cost {
    pub(crate) fds: usize,
    pub(crate) maps: usize,
}

impl Cost {
    /// A connection with its first slot: its socket, the client's pidfd, the slot's wake-up
    /// socket and mapping.
    pub(crate) const CONNECTION: Cost = Cost { fds: 3, maps: 1 };
    /// One more slot: its wake-up socket and mapping.
    pub(crate) const SLOT: Cost = Cost { fds: 1, maps: 1 };

    pub(crate) fn add(self, other: Cost) -> Cost {
        Cost {
            fds: self.fds + other.fds,
            maps: self.maps + other.maps,
        }
    }

    fn sub(self, other: Cost) -> Cost {
        Cost {
            fds: self.fds.saturating_sub(other.fds),
            maps: self.maps.saturating_sub(other.maps),
        }
    }

    fn within(self, limit: Cost) -> bool {
        self.fds <= limit.fds && self.maps <= limit.maps
    }
}

/// The server's budget and what its connections hold of it.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: Cost,
    used: Cost,
    by_uid: HashMap<u32, Cost>,
    own_uid: u32,
}

impl Budget {
    /// The budget of this process, for a server of user `own_uid`.
    pub(crate) fn new(own_uid: u32) -> Self {
        let open = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
        let fds = crate::sys::fd_limit().saturating_sub(open);
        let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(65_530);
        Budget::with_limit(
            own_uid,
            Cost {
                // Room for the application's own files.
                fds: fds.saturating_sub((fds / 4).min(256)),
                maps: maps / 2,
            },
        )
    }

    pub(crate) fn with_limit(own_uid: u32, limit: Cost) -> Self {
        Budget {
            limit,
            used: Cost::default(),
            by_uid: HashMap::new(),
            own_uid,
        }
    }

    /// Takes `cost` for a connection of user `uid`, or says why not.
    pub(crate) fn take(&mut self, uid: u32, cost: Cost) -> Result<(), String> {
        if !self.used.add(cost).within(self.limit) {
            return Err(format!(
                "the server holds as many connections and slots as its limits allow ({} \
                 descriptors, {} mappings); retry later, or raise its limit on open files",
                self.limit.fds, self.limit.maps
            ));
        }
        let mine = self.by_uid.get(&uid).copied().unwrap_or_default();
        let share = Cost {
            fds: self.limit.fds / 2,
            maps: self.limit.maps / 2,
        };
        if uid != self.own_uid && !mine.add(cost).within(share) {
            return Err(format!(
                "user {uid} holds half of what the server can hold ({} descriptors, {} \
                 mappings), the most one user other than the server's may; close some of its \
                 connections",
                share.fds, share.maps
            ));
        }
        self.used = self.used.add(cost);
        self.by_uid.insert(uid, mine.add(cost));
        Ok(())
    }

    /// Gives back what a closed connection of user `uid` held.
    pub(crate) fn give_back(&mut self, uid: u32, cost: Cost) {
        self.used = self.used.sub(cost);
        if let Some(mine) = self.by_uid.get_mut(&uid) {
            *mine = mine.sub(cost);
            if *mine == Cost::default() {
                self.by_uid.remove(&uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_user_gets_half_and_the_owner_the_rest() {
        let mut b = Budget::with_limit(0, Cost { fds: 30, maps: 100 });
        // Uid 7 may hold 15 descriptors: five connections.
        for _ in 0..5 {
            b.take(7, Cost::CONNECTION).unwrap();
        }
        let refusal = b.take(7, Cost::CONNECTION).unwrap_err();
        assert!(refusal.contains("user 7 holds half"), "{refusal}");
        // The owner may use what is left, and no more.
        for _ in 0..5 {
            b.take(0, Cost::CONNECTION).unwrap();
        }
        let refusal = b.take(0, Cost::SLOT).unwrap_err();
        assert!(refusal.contains("as its limits allow"), "{refusal}");
        b.give_back(7, Cost::CONNECTION);
        b.take(0, Cost::SLOT).unwrap();
        b.take(8, Cost::SLOT).unwrap();
    }
}
