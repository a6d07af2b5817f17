//! The server's access rules, applied to each client's kernel-reported identity.

use crate::options::Access;
use crate::sys::Credentials;

/// Whether a client with `peer` credentials (and supplementary `groups`) may connect to a server
/// of user `own_uid`.
pub(crate) fn admits(access: &Access, own_uid: u32, peer: &Credentials, groups: &[u32]) -> bool {
    peer.uid == own_uid
        || access.any_user
        || access.uids.contains(&peer.uid)
        || access
            .gids
            .iter()
            .any(|gid| *gid == peer.gid || groups.contains(gid))
}

/// Why a client was refused, naming the rules and what would admit it.
pub(crate) fn refusal(access: &Access, own_uid: u32, peer: &Credentials) -> String {
    let mut rules = vec![format!("its own user (uid {own_uid})")];
    if !access.uids.is_empty() {
        rules.push(format!("uids {:?}", access.uids));
    }
    if !access.gids.is_empty() {
        rules.push(format!("members of groups {:?}", access.gids));
    }
    format!(
        "this client runs as uid {} (gid {}), and the server admits only {}; the server's owner \
         can admit it with ServerOptions::allow_uid({}), allow_gid or allow_any_user",
        peer.uid,
        peer.gid,
        rules.join(", "),
        peer.uid
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Credentials {
        Credentials { pid: 1, uid, gid }
    }

    #[test]
    fn rules_add_up() {
        let owner_only = Access::default();
        assert!(admits(&owner_only, 1000, &peer(1000, 5), &[]));
        assert!(
            !admits(&owner_only, 1000, &peer(0, 0), &[]),
            "not even root"
        );
        let rules = Access {
            any_user: false,
            uids: vec![7],
            gids: vec![50],
        };
        assert!(admits(&rules, 1000, &peer(7, 1), &[]));
        assert!(admits(&rules, 1000, &peer(8, 50), &[]), "primary group");
        assert!(
            admits(&rules, 1000, &peer(8, 1), &[3, 50]),
            "supplementary group"
        );
        assert!(!admits(&rules, 1000, &peer(8, 1), &[3]));
        let any = Access {
            any_user: true,
            ..Access::default()
        };
        assert!(admits(&any, 1000, &peer(65534, 65534), &[]));
    }

    #[test]
    fn a_refusal_names_the_rules_and_the_fix() {
        let text = refusal(
            &Access {
                any_user: false,
                uids: vec![7],
                gids: vec![],
            },
            1000,
            &peer(65534, 65534),
        );
        assert!(text.contains("uid 65534"), "{text}");
        assert!(text.contains("its own user (uid 1000), uids [7]"), "{text}");
        assert!(text.contains("allow_uid(65534)"), "{text}");
    }
}
