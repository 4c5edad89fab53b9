//! Bearer tokens for tests, signed with the secret every test gateway is started with.

use std::time::Duration;

use coordinator::UserId;
use gateway::auth::Keys;
pub use gateway::auth::Role;

/// The JWT secret of every test gateway (and of the binaries the tests start).
pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// A token for `user` as `role`, valid for ten minutes.
pub fn token(user: &str, role: Role) -> String {
    Keys::new(SECRET)
        .unwrap()
        .mint(
            &UserId::parse(user).unwrap(),
            role,
            Duration::from_secs(600),
        )
        .unwrap()
}
