//! The command line: `serve`, `migrate`, `user …`, `sessions …`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::app::{self, Application};
use crate::config::{LogFormat, PurgeArgs, Settings, StoreArgs};
use crate::db;
use crate::domain::ended_by::EndedBy;
use crate::domain::username::{display_name, shown, Username};
use crate::domain::{clock, password};
use crate::error::Error;
use crate::service;
use crate::store::{self, sessions, users};
use crate::telemetry;
use crate::telemetry::metrics::Metrics;

/// Session-management service: Rocket.Chat device management, admin
/// authenticated sessions and the JSON action API over one store.
///
/// Each command's `--help` lists the settings it reads (`serve --help`:
/// all of them); every one can also be set through the environment
/// variable shown next to it.
#[derive(Parser)]
#[command(name = "sessiond", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrates the store first).
    Serve(Box<Settings>),
    /// Bring the store's schema up to date and exit.
    Migrate(StoreArgs),
    /// Manage users.
    User {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect and end sessions.
    Sessions {
        #[command(flatten)]
        store: StoreArgs,
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

impl Command {
    /// The settings this command runs with: every one for `serve`; for the
    /// others, the few they read and the defaults for the rest (the
    /// environment's other variables are `serve`'s, and left alone).
    fn settings(&self) -> Settings {
        match self {
            Command::Serve(settings) => Settings::clone(settings),
            Command::Migrate(store) | Command::User { store, .. } => store.settings(),
            Command::Sessions { store, command } => {
                let mut settings = store.settings();
                if let SessionsCommand::Purge(purge) = command {
                    purge.apply(&mut settings);
                }
                settings
            }
        }
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        username: String,
        /// The password, or `-` to read it from standard input.
        #[arg(long)]
        password: String,
        /// Display name [default: the username].
        #[arg(long)]
        name: Option<String>,
        /// Give the user the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show one user, with their number of active sessions.
    Show {
        username: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Refuse the user's logins and end their sessions.
    Disable { username: String },
    /// Let a disabled user log in again.
    Enable { username: String },
    /// Delete a user, ending and deleting their sessions.
    Delete { username: String },
    /// Turn off a user's TOTP (say, a lost phone) and end their sessions;
    /// they log in with the password alone and can enroll again.
    #[command(name = "reset-2fa")]
    Reset2fa { username: String },
    /// Set a user's password.
    Passwd {
        username: String,
        /// The password, or `-` to read it from standard input.
        #[arg(long)]
        password: String,
    },
    /// Set a user's role.
    SetRole {
        username: String,
        #[arg(value_parser = ["admin", "user"])]
        role: String,
    },
}

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List sessions, newest first.
    List {
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
        /// Include ended and expired sessions.
        #[arg(long)]
        all: bool,
        /// At most this many rows (1 to 100000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// End a session, by its numeric ID or its 17-character sessionId; or,
    /// with --user, every active session of a user.
    Revoke {
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        session: Option<String>,
        /// End all of this user's active sessions.
        #[arg(long)]
        user: Option<String>,
    },
    /// End expired sessions and delete those ended longer ago than the retention.
    Purge(PurgeArgs),
}

/// How a listing is printed: aligned columns for people, JSON for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() && json_logs_asked() => {
            // A setting clap refused, in the JSON the logs would have been.
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "ERROR",
                "message": "sessiond stopped",
                "error": error.render().to_string().trim(),
            });
            eprintln!("{line}");
            return ExitCode::from(2);
        }
        Err(error) => error.exit(),
    };
    let settings = cli.command.settings();
    let log_format = settings.log_format;
    let traces = telemetry::init(log_format, &settings.log_filter);
    for name in unknown_settings(std::env::vars_os().map(|(name, _)| name)) {
        tracing::warn!(variable = %name, "unknown setting ignored: no SESSIOND_ variable has this name");
    }
    // The guard flushes the last spans when the command ends.
    let outcome = match traces {
        Ok(_guard) => execute(settings, cli.command),
        Err(error) => Err(anyhow::Error::msg(error)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // In the format the logs are in, so a JSON log stays parseable.
            match log_format {
                LogFormat::Json => {
                    tracing::error!(error = %format!("{error:#}"), "sessiond stopped")
                }
                LogFormat::Text => eprintln!("error: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// The `SESSIOND_*` names among `names` that no setting of any command
/// reads: a misspelt variable would otherwise leave its setting at the
/// default unnoticed.
fn unknown_settings(names: impl Iterator<Item = std::ffi::OsString>) -> Vec<String> {
    let known = environment_variables(&<Cli as clap::CommandFactory>::command());
    let mut unknown: Vec<String> = names
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.starts_with("SESSIOND_") && !known.contains(name))
        .collect();
    unknown.sort();
    unknown
}

/// The variables the arguments of `command` and of its subcommands, at any
/// depth, are read from.
fn environment_variables(command: &clap::Command) -> std::collections::HashSet<String> {
    let mut names: std::collections::HashSet<String> = command
        .get_arguments()
        .filter_map(|argument| argument.get_env())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    for subcommand in command.get_subcommands() {
        names.extend(environment_variables(subcommand));
    }
    names
}

/// Whether JSON logs were asked for, read before the arguments parse.
fn json_logs_asked() -> bool {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--log-format=json" => return true,
            "--log-format" => return args.next().as_deref() == Some("json"),
            _ => {}
        }
    }
    std::env::var("SESSIOND_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

fn execute(settings: Settings, command: Command) -> anyhow::Result<()> {
    settings.validate().map_err(anyhow::Error::msg)?;
    match command {
        Command::Serve(_) => serve(settings),
        Command::Migrate(_) => {
            db::run_migrations(&mut db::establish(&settings)?, settings.db_pooler)?;
            println!("migrations applied to {}", settings.database_url);
            Ok(())
        }
        Command::User { command, .. } => user(&settings, command),
        Command::Sessions { command, .. } => sessions_command(&settings, command),
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let store = settings.database_url.to_string();
        let app = Application::build(settings).await?;
        println!("sessiond listening on {} (store: {store})", app.address());
        if let Some(path) = &app.created_key_file {
            println!(
                "generated the TOTP encryption key in {}; keep it with the store",
                path.display()
            );
        }
        if let Some(password) = &app.initial_admin_password {
            println!(
                "created the first administrator: username `admin`, one-time password {password}"
            );
            println!("(shown only now; change it with `sessiond user passwd admin --password -`)");
        }
        app.run_until_stopped().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Opens the store for a CLI command. Only `serve` and `migrate` change the
/// schema: a store this binary's migrations have not reached is refused,
/// saying what to run.
fn connect(settings: &Settings) -> anyhow::Result<db::AnyConnection> {
    let mut conn = db::establish(settings)
        .with_context(|| format!("connecting to {}", settings.database_url))?;
    let pending = db::pending_migrations(&mut conn)?;
    if pending > 0 {
        bail!(
            "the store at {} lacks {pending} of this binary's migrations: run `sessiond migrate` \
             (or start `sessiond serve`, which migrates) first",
            settings.database_url
        );
    }
    Ok(conn)
}

/// Sessions the command line ends. They are counted nowhere: the command
/// line serves no `/metrics`.
fn by_cli() -> service::sessions::Ender<'static> {
    static CLI: EndedBy = EndedBy::Cli;
    static METRICS: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::unexported);
    service::sessions::Ender {
        by: &CLI,
        surface: service::Surface::Cli,
        metrics: &METRICS,
    }
}

/// A password from the command line, or `-`: one line of standard input.
/// Checked against the rules for new passwords.
pub fn read_password(arg: &str) -> anyhow::Result<String> {
    let password = if arg == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            eprint!("password: ");
        }
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        arg.to_owned()
    };
    password::check_new(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let now = clock::now();
    match command {
        UserCommand::Add {
            username,
            password,
            name,
            admin,
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let password = read_password(&password)?;
            let hash = password::hash(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            let name = match name {
                Some(name) => display_name(&name).map_err(anyhow::Error::msg)?,
                None => username.as_str().to_owned(),
            };
            let created = users::create(&mut conn, &username, &name, &hash, admin, now);
            match created {
                Ok(user) => println!("created user {} (userId {})", user.username, user.guid),
                Err(e) if store::is_unique_violation(&e) => bail!("user {username} already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        UserCommand::List { output } => {
            let users = users::list(&mut conn)?;
            match output {
                Output::Json => print_json(&users.iter().map(user_json).collect::<Vec<_>>())?,
                Output::Table => {
                    let mut table = table(&[
                        "ID", "USER ID", "USERNAME", "ROLES", "TOTP", "STATE", "NAME",
                    ]);
                    for user in users {
                        table.add_row([
                            user.id.to_string(),
                            user.guid,
                            user.username,
                            user.roles,
                            (if user.totp_enabled { "on" } else { "off" }).to_owned(),
                            (if user.active { "active" } else { "disabled" }).to_owned(),
                            user.name,
                        ]);
                    }
                    print_table(table);
                }
            }
        }
        UserCommand::Show { username, output } => {
            let user = find_user(&mut conn, &username)?;
            let active_sessions = sessions::count_active_for_user(&mut conn, user.id, now)?;
            let mut shown = user_json(&user);
            shown["activeSessions"] = active_sessions.into();
            match output {
                Output::Json => print_json(&shown)?,
                Output::Table => {
                    let mut table = table(&["FIELD", "VALUE"]);
                    for (key, value) in shown.as_object().into_iter().flatten() {
                        let value = value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned);
                        table.add_row([key.clone(), value]);
                    }
                    print_table(table);
                }
            }
        }
        UserCommand::Disable { username } => {
            let user = find_user(&mut conn, &username)?;
            users::set_active(&mut conn, user.id, false, now)?;
            let ended = service::sessions::end_all(
                &mut conn,
                service::sessions::Owner::Id(user.id),
                None,
                by_cli(),
                now,
            )?;
            tracing::info!(username = %user.username, user_id = %user.guid, ended, "user disabled from the command line");
            println!("disabled {username}; ended {ended} sessions");
        }
        UserCommand::Enable { username } => {
            let user = find_user(&mut conn, &username)?;
            users::set_active(&mut conn, user.id, true, now)?;
            tracing::info!(username = %user.username, user_id = %user.guid, "user enabled from the command line");
            println!("enabled {username}");
        }
        UserCommand::Delete { username } => {
            let user = find_user(&mut conn, &username)?;
            let ended = service::sessions::end_all(
                &mut conn,
                service::sessions::Owner::Id(user.id),
                None,
                by_cli(),
                now,
            )?;
            users::delete(&mut conn, user.id)?;
            tracing::warn!(username = %user.username, user_id = %user.guid, ended, "user deleted from the command line");
            println!("deleted {username} and their sessions ({ended} were active)");
        }
        UserCommand::Reset2fa { username } => {
            let user = find_user(&mut conn, &username)?;
            if !user.totp_enabled {
                // Nothing to turn off: no session ends, nothing is recorded.
                println!("{username} has no TOTP turned on; nothing changed");
                return Ok(());
            }
            service::totp::turn_off(&mut conn, &user, now)?;
            let ended = service::sessions::end_all(
                &mut conn,
                service::sessions::Owner::Id(user.id),
                None,
                by_cli(),
                now,
            )?;
            // The audit record: who lost their second factor, and when.
            tracing::warn!(username = %user.username, user_id = %user.guid, ended, "two-factor authentication reset from the command line");
            println!("turned off TOTP for {username} and ended {ended} sessions; they can log in with the password and enroll again");
        }
        UserCommand::Passwd { username, password } => {
            let password = read_password(&password)?;
            let hash = password::hash(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            let key = crate::domain::username::lookup_key(&username);
            if !users::set_password_hash(&mut conn, &key, &hash, now)? {
                bail!("no user named {}", shown(&username));
            }
            println!("password changed for {username}");
        }
        UserCommand::SetRole { username, role } => {
            let roles = if role == "admin" {
                "user,admin"
            } else {
                "user"
            };
            let key = crate::domain::username::lookup_key(&username);
            if !users::set_roles(&mut conn, &key, roles, now)? {
                bail!("no user named {}", shown(&username));
            }
            println!("{username} is now {role}");
        }
    }
    Ok(())
}

/// The user named `username`, or an error that says there is none.
fn find_user(conn: &mut db::AnyConnection, username: &str) -> anyhow::Result<users::User> {
    let key = crate::domain::username::lookup_key(username);
    users::find_by_username_key(conn, &key)?
        .with_context(|| format!("no user named {}", shown(username)))
}

/// A user as the JSON listings show them: never a secret or hash.
fn user_json(user: &users::User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "userId": user.guid,
        "username": user.username,
        "name": user.name,
        "roles": user.role_list(),
        "totp": user.totp_enabled,
        "active": user.active,
        "createdAt": clock::iso_millis(user.created_at),
        "updatedAt": clock::iso_millis(user.updated_at),
    })
}

/// A table for people, under `header`: aligned columns two spaces apart,
/// no borders, one row a line (never wrapped to the terminal's width); the
/// header is bold on a terminal, and the text plain everywhere else.
fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(
            header.iter().map(|name| {
                comfy_table::Cell::new(name).add_attribute(comfy_table::Attribute::Bold)
            }),
        );
    table
}

fn print_table(mut table: comfy_table::Table) {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    print_listing(&table.trim_fmt());
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print_listing(&serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Writes a listing to standard output. A reader that stops early (`| head`)
/// ends the listing quietly; `println!` would panic on the closed pipe.
fn print_listing(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            tracing::warn!(%error, "could not write the listing");
        }
    }
}

fn sessions_command(settings: &Settings, command: SessionsCommand) -> anyhow::Result<()> {
    let mut conn = connect(settings)?;
    let now = clock::now();
    match command {
        SessionsCommand::List {
            user,
            all,
            limit,
            output,
        } => {
            if let Some(username) = &user {
                find_user(&mut conn, username)?;
            }
            let keys: Vec<String> = user
                .as_deref()
                .map(crate::domain::username::lookup_key)
                .into_iter()
                .collect();
            let request = sessions::lists::Newest {
                username_keys: &keys,
                include_ended: all,
                limit,
                ..Default::default()
            };
            let rows = sessions::lists::newest(&mut conn, &request, now)?;
            let state_of = |session: &sessions::Session| match &session.logout_at {
                Some(_) => format!("ended ({})", session.logout_by.as_deref().unwrap_or("?")),
                None if session.expires_at <= now => "expired".to_owned(),
                None => "active".to_owned(),
            };
            if output == Output::Json {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(session, username)| {
                        serde_json::json!({
                            "id": session.id,
                            "sessionId": session.session_id,
                            "username": username,
                            "loginAt": clock::iso_millis(session.login_at),
                            "lastActivityAt": clock::iso_millis(session.last_activity_at),
                            "expiresAt": clock::iso_millis(session.expires_at),
                            "ip": session.ip,
                            "device": session.device_name,
                            "os": session.os_name,
                            "state": state_of(session),
                        })
                    })
                    .collect();
                return print_json(&rows);
            }
            let mut table = table(&[
                "ID",
                "SESSION ID",
                "USER",
                "LOGIN AT",
                "IP",
                "DEVICE",
                "STATE",
            ]);
            for (session, username) in rows {
                let state = state_of(&session);
                table.add_row([
                    session.id.to_string(),
                    session.session_id,
                    username,
                    clock::iso_millis(session.login_at),
                    session.ip,
                    format!("{} {}", session.device_name, session.os_name)
                        .trim()
                        .to_owned(),
                    state,
                ]);
            }
            print_table(table);
        }
        SessionsCommand::Revoke {
            user: Some(username),
            ..
        } => {
            let user = find_user(&mut conn, &username)?;
            let ended = service::sessions::end_all(
                &mut conn,
                service::sessions::Owner::Id(user.id),
                None,
                by_cli(),
                now,
            )?;
            println!("revoked {ended} sessions of {username}");
        }
        SessionsCommand::Revoke {
            session: Some(session),
            user: None,
        } => {
            let id = match session.parse::<i64>() {
                Ok(id) => id,
                Err(_) => sessions::find_by_session_id(&mut conn, &session)?
                    .map(|s| s.id)
                    .with_context(|| {
                        format!(
                            "no session with sessionId {}: name a session by its numeric ID \
                             or its 17-character sessionId (`sessiond sessions list`)",
                            shown(&session)
                        )
                    })?,
            };
            let named = match session.parse::<i64>() {
                Ok(_) => format!("ID {session}"),
                Err(_) => format!("sessionId {session}"),
            };
            let target = service::sessions::Target::Active(id);
            match service::sessions::end(&mut conn, target, by_cli(), now) {
                Ok(_) => {}
                Err(Error::NotFound(_)) => bail!("no active session with {named}"),
                Err(other) => return Err(other.into()),
            }
            println!("revoked session {session}");
        }
        SessionsCommand::Revoke {
            session: None,
            user: None,
        } => bail!("name a session, or a user with --user"),
        SessionsCommand::Purge(_) => {
            let (ended, purged) = app::sweep(&mut conn, settings, by_cli().metrics)?;
            println!("ended {ended} expired sessions, purged {purged} old sessions");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_settings_are_found_and_real_ones_are_not() {
        let names = [
            "SESSIOND_DB_POOL_SIZE",
            "SESSIOND_LOGIN_MAX_FAILURE_PER_USER",
            "SESSIOND_SECRET_KEY_FILE",
            "PATH",
            "SESSIOND_BIND",
        ]
        .map(std::ffi::OsString::from);
        assert_eq!(
            unknown_settings(names.into_iter()),
            ["SESSIOND_LOGIN_MAX_FAILURE_PER_USER"]
        );
    }

    /// Every variable of every command is known, however deep the command.
    #[test]
    fn every_commands_variables_are_known() {
        use clap::{Args, CommandFactory};

        let mut command = Cli::command();
        command.build();
        let mut names = std::collections::HashSet::new();
        let mut commands = vec![&command];
        while let Some(command) = commands.pop() {
            names.extend(
                command
                    .get_arguments()
                    .filter_map(|argument| argument.get_env())
                    .map(|name| name.to_string_lossy().into_owned()),
            );
            commands.extend(command.get_subcommands());
        }
        let settings = Settings::augment_args(clap::Command::new("serve"));
        names.extend(
            settings
                .get_arguments()
                .filter_map(|argument| argument.get_env())
                .map(|name| name.to_string_lossy().into_owned()),
        );
        assert!(names.contains("SESSIOND_RETENTION_SECONDS"));
        let names = names.into_iter().map(std::ffi::OsString::from);
        assert_eq!(unknown_settings(names), Vec::<String>::new());
    }

    #[test]
    fn only_serve_takes_the_servers_settings() {
        use clap::CommandFactory;

        Cli::command().debug_assert();
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.command.settings());
        assert!(parse(&["sessiond", "user", "list", "--bind", "127.0.0.1:1"]).is_err());
        assert!(parse(&["sessiond", "sessions", "list", "--hash-concurrency", "2"]).is_err());
        let bound = parse(&["sessiond", "serve", "--bind", "127.0.0.1:1"]).unwrap();
        assert_eq!(bound.bind, "127.0.0.1:1");
        // The store's settings go after the command or its group.
        for args in [
            &["sessiond", "user", "list", "--db-timeout-seconds", "7"][..],
            &["sessiond", "user", "--db-timeout-seconds", "7", "list"],
            &["sessiond", "migrate", "--db-timeout-seconds", "7"],
        ] {
            assert_eq!(parse(args).unwrap().db_timeout_seconds, 7, "{args:?}");
        }
        let purge = &["sessiond", "sessions", "purge", "--retention-seconds", "60"];
        assert_eq!(parse(purge).unwrap().retention_seconds, 60);
        assert!(parse(&["sessiond", "sessions", "list", "--retention-seconds", "60"]).is_err());
    }
}
