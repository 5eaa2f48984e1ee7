//! The operations every surface calls. A session starts in
//! [`sessions::open`] (reached through [`login::login`]) and ends in
//! [`sessions::end`], [`sessions::end_all`] or [`sessions::expire`],
//! whichever surface, the CLI or the sweep asked. No HTTP here.

pub mod events;
pub mod login;
pub mod sessions;
pub mod totp;

/// Which door a change came through: a label on the session metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `/api/v1/*`: login, logout and device management.
    RocketChat,
    /// `/api/admin/v1/authenticated-sessions/*`.
    Admin,
    /// `POST /api`.
    JsonAction,
    /// The `sessiond` command line.
    Cli,
    /// The background sweep.
    Sweep,
}

impl Surface {
    pub fn label(self) -> &'static str {
        match self {
            Surface::RocketChat => "rocket_chat",
            Surface::Admin => "admin",
            Surface::JsonAction => "json_action",
            Surface::Cli => "cli",
            Surface::Sweep => "sweep",
        }
    }
}
