//! Reloading the authentication files while the broker runs (on a timer and on SIGHUP, see
//! `listeners::Reloader`), so a user added to a Secret or a rule changed in an ACL takes
//! effect without a restart (which would disconnect every client).

use super::Broker;
use crate::auth::AuthFileError;

impl Broker {
    /// Re-reads the authentication files ([`Authenticator::reload`]); true if they changed.
    /// Then every session's topic rules are made again from the new ACL, under the session's
    /// lock, so connected clients are held to the new rules from their next message on (a
    /// subscription the new rules forbid stays, but receives nothing).
    ///
    /// [`Authenticator::reload`]: crate::auth::Authenticator::reload
    pub fn reload_auth(&self) -> Result<bool, AuthFileError> {
        let changed = self.authenticator.reload()?;
        if changed && self.acl_enabled {
            self.sessions.for_each(|session| {
                let mut st = session.state.lock();
                let refreshed = st.acl.as_deref().and_then(|old| {
                    self.authenticator
                        .acl_for_user(old.username(), &session.client_id)
                });
                if let Some(acl) = refreshed {
                    st.acl = Some(acl);
                }
            });
        }
        Ok(changed)
    }

    /// [`Broker::reload_auth`], logged and counted in `ferrumq_auth_reloads_total`.
    pub fn reload_auth_logged(&self) {
        match self.reload_auth() {
            Ok(false) => {}
            Ok(true) => {
                self.stats.auth_reloaded(true);
                tracing::info!("authentication files reloaded");
            }
            Err(error) => {
                self.stats.auth_reloaded(false);
                tracing::error!(%error, "authentication files not reloaded; the previous ones stay in force");
            }
        }
    }
}
