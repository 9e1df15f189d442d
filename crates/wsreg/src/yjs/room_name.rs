//! Room names and the file each room's document is stored in.
//!
//! As with the y-websocket server, the room is the URL path after its first `/`, taken
//! as sent (percent-escapes included, query string excluded): `ws://host:port/notes` is
//! room `notes`. A name becomes a file name by keeping `A-Z a-z 0-9 - _` and writing
//! every other byte as `%XX` — so `.`, `/` and `\0` can never appear, no name can climb
//! out of the data directory, and different names never share a file. The `room-` prefix
//! keeps even the empty name (`ws://host:port/`) a visible, ordinary file.

/// The longest encoded file stem accepted, so that the file name stays under the 255
/// bytes file systems allow.
pub const MAX_ENCODED: usize = 240;

/// A room name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room name too long: {encoded} bytes once encoded for a file name (at most {MAX_ENCODED})")]
pub struct RoomNameTooLong {
    pub encoded: usize,
}

/// The room a request path names (`/notes` → `notes`).
pub fn from_path(path: &str) -> Result<String, RoomNameTooLong> {
    let name = path.strip_prefix('/').unwrap_or(path);
    let encoded = encode(name).len();
    match encoded <= MAX_ENCODED {
        true => Ok(name.to_owned()),
        false => Err(RoomNameTooLong { encoded }),
    }
}

/// The room's name, made safe for a file name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The name of the file that stores the room's document.
pub fn file_name(name: &str) -> String {
    format!("room-{}.ylog", encode(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_directory_or_collide() {
        assert_eq!(file_name("notes"), "room-notes.ylog");
        assert_eq!(file_name(""), "room-.ylog");
        assert_eq!(
            file_name("../../etc/passwd"),
            "room-%2E%2E%2F%2E%2E%2Fetc%2Fpasswd.ylog"
        );
        assert_eq!(file_name("a%2Fb"), "room-a%252Fb.ylog");
        assert_ne!(file_name("a/b"), file_name("a%2Fb"));
        for name in ["..", ".", "/", "a\0b", "x\\y", "é"] {
            let f = file_name(name);
            assert!(
                !f.contains('/') && !f.contains('\0') && !f.contains(".."),
                "{f}"
            );
            assert!(f.is_ascii(), "{f}");
        }
    }

    #[test]
    fn paths_map_to_rooms_within_the_length_limit() {
        assert_eq!(from_path("/notes").unwrap(), "notes");
        assert_eq!(from_path("/").unwrap(), "");
        assert!(from_path(&format!("/{}", "a".repeat(MAX_ENCODED))).is_ok());
        assert_eq!(
            from_path(&format!("/{}", ".".repeat(81))),
            Err(RoomNameTooLong { encoded: 243 })
        );
    }
}
